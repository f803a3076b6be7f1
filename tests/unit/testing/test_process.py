"""Process.stop takes the child's whole process group with it (issue 14, finding 11a)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kuar.testing import eventually
from kuar.testing.process import Process


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers signal 0; it no longer runs
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def _start_family(tmp_path: Path, script: str) -> tuple[Process, int]:
    process = Process("family", ["/bin/sh", "-c", script], tmp_path)
    process.start()
    pid_file = tmp_path / "grandchild.pid"
    return process, eventually(lambda: int(pid_file.read_text()), timeout=10)


@pytest.fixture
def cleanup() -> Iterator[list[int]]:
    """Pids this test started: SIGKILLed at the end whatever happened (the "before" run)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _gone(pid: int) -> None:
    def check() -> None:
        assert not _alive(pid), f"pid {pid} still runs"

    eventually(check, timeout=5)


def test_stop_ends_the_child_and_its_grandchild(tmp_path: Path, cleanup: list[int]) -> None:
    process, grandchild = _start_family(
        tmp_path, "sleep 300 & echo $! > grandchild.pid; wait")
    cleanup.append(grandchild)
    assert _alive(grandchild)
    process.stop(5.0)
    assert not process.running
    _gone(grandchild)


def test_stop_escalates_to_sigkill_for_the_group(tmp_path: Path, cleanup: list[int]) -> None:
    """A grandchild that ignores SIGTERM is killed when the grace period ends."""
    process, grandchild = _start_family(
        tmp_path, "(trap '' TERM; exec sleep 300) & echo $! > grandchild.pid; "
                  "trap '' TERM; while :; do sleep 0.1; done")
    cleanup.append(grandchild)
    started = time.monotonic()
    process.stop(0.5)
    assert time.monotonic() - started < 5
    _gone(grandchild)


def test_kill_ends_the_group(tmp_path: Path, cleanup: list[int]) -> None:
    process, grandchild = _start_family(
        tmp_path, "sleep 300 & echo $! > grandchild.pid; wait")
    cleanup.append(grandchild)
    process.kill()
    _gone(grandchild)


def test_a_grandchild_ends_when_the_child_exits_on_its_own(
    tmp_path: Path, cleanup: list[int]
) -> None:
    """As in a container: when the main process is seen gone, the rest of its group goes."""
    process, grandchild = _start_family(
        tmp_path, "sleep 300 & echo $! > grandchild.pid; sleep 0.5; exit 4")
    cleanup.append(grandchild)

    def exited() -> int:
        code = process.exit_code()
        assert code is not None
        return code

    assert eventually(exited, timeout=10) == 4
    _gone(grandchild)
