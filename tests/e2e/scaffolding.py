"""Helpers for the scaffold tests: a venv for a generated project that reuses this one's."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path


def project_venv(project: Path, venv: Path) -> Path:
    """``pip install --no-deps -e project`` into a venv that sees this repository's packages.

    The install is real (the project's build backend comes from the package index), its
    dependencies are this venv's (kuar, editable). ``make VENV=<venv>`` then finds it ready.
    """
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    # addsitedir, not a bare path: the parent's own .pth files (editable kuar) must run too
    parent = sysconfig.get_paths()["purelib"]
    (site / "kuar-parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    install = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q",
                              "--no-deps", "-e", str(project)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    # the tools come from this repository's venv: launchers with the new venv's interpreter
    for name, code in (("pytest", "import pytest\nsys.exit(pytest.main())"),
                       ("kuar", "from kuar.cli.main import main\nmain()")):
        launcher = venv / "bin" / name
        launcher.write_text(f"#!{venv / 'bin/python'}\nimport sys\n{code}\n")
        launcher.chmod(0o755)
    (venv / ".installed").touch()
    return venv


def make(project: Path, venv: Path, target: str, *extra: str,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``make -C project target VENV=venv`` with the venv's bin first on PATH."""
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    proc = subprocess.run(["make", "-C", str(project), target, f"VENV={venv}", *extra],
                          capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"make {target}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc
