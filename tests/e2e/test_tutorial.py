"""docs/tutorial.md, run as written: every command, every file, in an empty folder.

``sh`` blocks run line by line (``kuar`` as this venv's; ``make`` with a venv where the
project is installed once; ``make deploy`` as a server dry run against the session's control
plane). A ``python`` block after ``<!-- file: PATH -->`` replaces PATH; after
``<!-- edit: PATH -->`` it replaces the classes of the same names in PATH.
"""

from __future__ import annotations

import difflib
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kuar.testing.pytest_plugin import Kubectl
from tests.e2e.scaffolding import make, project_venv

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial.md"
KUAR = Path(sys.executable).parent / "kuar"
BLOCK = re.compile(r"(?:<!-- (file|edit): (\S+) -->\n)?```(sh|python)\n(.*?)```", re.S)


def edit_classes(text: str, block: str) -> str:
    """Replace each top-level class of ``block`` in ``text`` by its new body."""
    for match in re.finditer(r"^class (\w+)\(.*?(?=^class |\Z)", block, re.S | re.M):
        name = match.group(1)
        start = text.index(f"\nclass {name}(") + 1
        nxt = text.find("\nclass ", start + 1)
        end = nxt + 1 if nxt != -1 else len(text)
        text = text[:start] + match.group(0).rstrip("\n") + "\n\n\n" + text[end:]
    return text


@pytest.mark.controlplane
def test_the_tutorial_runs_as_written(tmp_path: Path, kubeconfig: Path,
                                      kubectl: Kubectl) -> None:
    project = tmp_path / "memcached"
    project.mkdir()
    venv: Path | None = None
    written: dict[str, tuple[str, str]] = {}  # path -> (scaffolded, final)
    timings: list[str] = []
    for kind, path, lang, body in BLOCK.findall(TUTORIAL.read_text()):
        if lang == "python":
            target = project / path
            before = target.read_text()
            after = body if kind == "file" else edit_classes(before, body)
            target.write_text(after)
            written.setdefault(path, (before, after))
            written[path] = (written[path][0], after)
            continue
        for line in body.splitlines():
            command = shlex.split(line, comments=True)
            if not command:
                continue
            started = time.monotonic()
            if command[0] == "kuar":
                proc = subprocess.run([str(KUAR), *command[1:]], cwd=project,
                                      capture_output=True, text=True, timeout=120)
                assert proc.returncode == 0, f"{line}: {proc.stderr}"
            elif command[:2] == ["make", "deploy"]:
                kubectl("create", "namespace", "memcached-system")
                dry = f"kubectl --kubeconfig {kubeconfig} --dry-run=server"
                try:
                    make(project, venv or project / ".venv", "deploy", f"KUBECTL={dry}")
                finally:
                    kubectl("delete", "namespace", "memcached-system", "--wait=false")
            elif command[0] == "make":
                if venv is None:
                    venv = project_venv(project, tmp_path / "venv")
                make(project, venv, *command[1:])
            else:
                raise AssertionError(f"the tutorial runs {line!r}, which this test cannot")
            timings.append(f"{line.split('#')[0].strip()}: {time.monotonic() - started:.1f} s")
    print("\n" + "\n".join(timings))
    added = 0
    for path, (before, after) in written.items():
        diff = [d for d in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                lineterm="", n=0)
                if d.startswith("+") and not d.startswith("+++") and d[1:].strip()]
        added += len(diff)
        print(f"{path}: {len(diff)} non-blank lines written or changed")
    print(f"author's lines: {added}")
    assert (project / "build/images/manager.oci.tar").is_file()
