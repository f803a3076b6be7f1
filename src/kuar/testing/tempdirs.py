"""kuar's temporary folders: each records its owner's pid; the next start sweeps stale ones.

Place in the pipeline: :class:`~kuar.testing.ControlPlane` (``kuar-cp-*``, with the PKI), the
local node (``kuar-node-*``) and the demo (``kuar-demo-*``) create their folders with
:func:`owned_tempdir`. A run that is SIGKILLed cannot remove its folder; the next run with the
same prefix does.

Guarantees: :func:`sweep_stale` deletes a folder only if all hold: its name starts with the
given prefix, which must start with ``kuar-``; it is a real folder (not a symlink) owned by
this user; it holds an ``owner.pid`` file with a pid; and no process with that pid exists.
Anything else (no pid file, an unreadable one, a live pid even if reused) is left alone.
Caveats: a pid reused by an unrelated process keeps a stale folder until that process ends.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

OWNER_FILE = "owner.pid"
"""File in each folder: the pid of the process that owns the folder."""

PREFIX = "kuar-"
"""Every prefix swept starts with this."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _owner(folder: Path) -> int | None:
    pid_file = folder / OWNER_FILE
    try:
        info = pid_file.lstat()
        if not stat.S_ISREG(info.st_mode):
            return None
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 else None


def sweep_stale(prefix: str, parent: Path | None = None) -> list[Path]:
    """Delete the ``prefix*`` folders in ``parent`` (the temp dir) whose owner pid is gone."""
    if not prefix.startswith(PREFIX) or len(prefix) <= len(PREFIX):
        raise ValueError(f"only kuar's own folders are swept: prefix must start with {PREFIX!r}")
    root = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for folder in entries:
        if not folder.name.startswith(prefix):
            continue
        try:
            info = folder.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        pid = _owner(folder)
        if pid is None or _alive(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def owned_tempdir(prefix: str, parent: Path | None = None) -> Path:
    """Sweep stale ``prefix*`` folders, then make a new one (0700) owned by this process."""
    sweep_stale(prefix, parent)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    (folder / OWNER_FILE).write_text(f"{os.getpid()}\n")
    return folder
