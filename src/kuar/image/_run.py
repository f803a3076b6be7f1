"""Running the Debian tools and pip: presence checks, one-line errors, full-disk detection.

Place in the pipeline: used by every step of :mod:`kuar.image` that calls a program.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from kuar.image.settings import ImageError

DEBIAN_TOOLS = {"mmdebstrap": "mmdebstrap", "umoci": "umoci"}
"""Programs a build runs, and the Debian package that has each (``make images`` installs
them with apt-get)."""

_NO_SPACE = "No space left on device"


def require_tools(names: Sequence[str] = tuple(DEBIAN_TOOLS)) -> None:
    """Raise :class:`ImageError` naming every missing program and its Debian package."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        packages = " ".join(sorted({DEBIAN_TOOLS.get(name, name) for name in missing}))
        raise ImageError(f"missing Debian tool(s): {', '.join(missing)} not found on PATH "
                         f"(install with: apt-get install -y {packages}; `make images` does)")


def run(cmd: Sequence[str], *, what: str, env: Mapping[str, str] | None = None,
        cwd: Path | None = None) -> str:
    """Run ``cmd``; return its stdout, or raise :class:`ImageError` with its telling line.

    ``what`` says what the command was doing ("build the Debian root file system"); the
    error quotes the last line of stderr that looks like an error, which for apt, pip and
    umoci is the one that names the cause.
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, env=full_env, cwd=cwd,
                              check=False)
    except FileNotFoundError as exc:
        raise ImageError(f"missing tool: {cmd[0]} not found (needed to {what})") from exc
    if proc.returncode != 0:
        output = proc.stderr + proc.stdout
        if _NO_SPACE in output:
            raise ImageError(f"no space left on device: {cmd[0]} failed to {what}")
        raise ImageError(f"{cmd[0]} failed to {what}: {_telling_line(output)}")
    return proc.stdout


def _telling_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for prefix in ("E:", "ERROR:", "error:", "Error:", "FATA", "fatal"):
        hits = [line for line in lines if line.startswith(prefix)]
        if hits:
            # apt and mmdebstrap print the cause first and "failed to run" last
            return hits[0] if prefix == "E:" else hits[-1]
    return lines[-1] if lines else "no output"


@contextmanager
def disk_errors(where: Path) -> Iterator[None]:
    """Turn ENOSPC (and EDQUOT) raised by Python's own writes into a one-line ImageError."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ImageError(f"no space left on device while writing under {where}") from exc
        raise


def fresh_dir(parent: Path, prefix: str) -> Path:
    """A new empty folder inside ``parent``, so a final rename stays on one file system."""
    import tempfile

    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
