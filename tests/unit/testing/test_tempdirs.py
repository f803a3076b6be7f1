"""Stale kuar folders left by a killed run are swept; nothing else is (issue 14, finding 11c)."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from kuar.testing.tempdirs import OWNER_FILE, owned_tempdir, sweep_stale


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _folder(root: Path, name: str, pid: int | None) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "ca.key").write_text("secret")
    if pid is not None:
        (folder / OWNER_FILE).write_text(f"{pid}\n")
    return folder


def test_the_next_start_sweeps_folders_whose_owner_is_gone(tmp_path: Path) -> None:
    import os

    stale = _folder(tmp_path, "kuar-node-stale1", _dead_pid())
    live = _folder(tmp_path, "kuar-node-live1", os.getpid())
    no_pid = _folder(tmp_path, "kuar-node-nopid", None)
    garbage = _folder(tmp_path, "kuar-node-garbage", None)
    (garbage / OWNER_FILE).write_text("not a pid")
    other_prefix = _folder(tmp_path, "kuar-cp-stale2", _dead_pid())
    not_kuar = _folder(tmp_path, "other-node-x", _dead_pid())

    made = owned_tempdir("kuar-node-", tmp_path)

    assert not stale.exists()
    assert live.exists() and no_pid.exists() and garbage.exists()
    assert other_prefix.exists()  # another prefix: swept by its own creator
    assert not_kuar.exists()
    assert made.name.startswith("kuar-node-")
    assert (made / OWNER_FILE).read_text().strip() == str(os.getpid())


def test_only_kuar_prefixes_are_swept(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kuar-"):
        sweep_stale("tmp", tmp_path)


def test_the_control_plane_and_node_folders_carry_an_owner_file(tmp_path: Path) -> None:
    """The three creators use owned_tempdir: control plane, local node, demo."""
    root = Path(__file__).parents[3] / "src"
    for module, prefix in (("kuar/testing/controlplane.py", "kuar-cp-"),
                           ("kuar/testing/localnode/__init__.py", "kuar-node-"),
                           ("kuar_demo/run.py", "kuar-demo-")):
        assert f'owned_tempdir("{prefix}"' in (root / module).read_text(), module


async def test_ctrl_c_while_the_demo_control_plane_starts_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while the control plane starts (in a thread): the start ends, then is undone."""
    import time

    import kuar_demo.run as demo

    class SlowPlane:
        def __init__(self, settings: Any) -> None:
            self.root: Path | None = None

        def start(self) -> None:
            self.root = Path(tempfile.mkdtemp(prefix="kuar-cp-", dir=tmp_path))
            time.sleep(0.5)

        def stop(self) -> None:
            if self.root is not None:
                import shutil
                shutil.rmtree(self.root)
                self.root = None

    monkeypatch.setattr(demo, "ControlPlane", SlowPlane)
    from rich.console import Console

    work = asyncio.create_task(demo.run_demo(demo.DemoOptions(), Console(quiet=True),
                                             asyncio.Event()))
    await asyncio.sleep(0.1)
    work.cancel()
    with pytest.raises(asyncio.CancelledError):
        await work
    assert list(tmp_path.iterdir()) == []
