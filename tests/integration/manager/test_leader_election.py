"""Two managers campaign for one Lease: one leads; a killed or stopped leader is replaced."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kuar.testing import ControlPlane

LEASE_DURATION, RETRY_PERIOD = 15.0, 2.0


class Candidate:
    def __init__(self, kubeconfig: Path, lease: str, namespace: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.manager.candidate", str(kubeconfig),
             lease, namespace],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.leading_at: float | None = None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.monotonic(), line.strip()))

    def poll_leading(self) -> bool:
        while not self.lines.empty():
            at, line = self.lines.get()
            if line.startswith("LEADING") and self.leading_at is None:
                self.leading_at = at
        return self.leading_at is not None

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def candidates(control_plane: ControlPlane, namespace: str) -> Iterator[list[Candidate]]:
    lease = f"lease-{uuid.uuid4().hex[:6]}"
    both = [Candidate(control_plane.kubeconfig, lease, namespace) for _ in range(2)]
    try:
        yield both
    finally:
        for c in both:
            c.end()


def _wait_for_leader(cands: list[Candidate], timeout: float) -> Candidate:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaders = [c for c in cands if c.poll_leading()]
        if leaders:
            assert len(leaders) == 1, "two leaders at once"
            return leaders[0]
        time.sleep(0.02)
    raise AssertionError(f"no leader within {timeout} s")


def test_standby_takes_over_within_lease_duration_after_kill_9(
    candidates: list[Candidate],
) -> None:
    leader = _wait_for_leader(candidates, 30)
    standby = next(c for c in candidates if c is not leader)
    time.sleep(RETRY_PERIOD * 1.5)  # the leader has renewed at least once
    assert not standby.poll_leading()
    killed_at = time.monotonic()
    leader.proc.send_signal(signal.SIGKILL)
    _wait_for_leader([standby], LEASE_DURATION + RETRY_PERIOD + 5)
    assert standby.leading_at is not None
    took = standby.leading_at - killed_at
    print(f"kill -9 takeover: {took:.2f} s")
    assert took <= LEASE_DURATION + RETRY_PERIOD, took


def test_standby_takes_over_within_two_seconds_after_sigterm(
    candidates: list[Candidate],
) -> None:
    leader = _wait_for_leader(candidates, 30)
    standby = next(c for c in candidates if c is not leader)
    time.sleep(1)
    stopped_at = time.monotonic()
    leader.proc.send_signal(signal.SIGTERM)
    _wait_for_leader([standby], 10)
    assert standby.leading_at is not None
    took = standby.leading_at - stopped_at
    print(f"SIGTERM takeover: {took:.2f} s")
    assert took <= 2.0, took
    assert leader.proc.wait(timeout=10) == 0
