"""One child process of the local control plane: started, logged, and stopped by its pid.

Place in the pipeline: :mod:`kuar.testing.controlplane` and the local node start every binary
through :class:`Process`.

Guarantees: :meth:`Process.stop` signals only the process this object started, by its pid,
waits for it, and escalates from SIGTERM to SIGKILL; it never looks processes up by name. On
Linux the child also gets SIGKILL if the Python thread that started it dies, so a crashed test
run does not leak an API server.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Process:
    """A child process whose output goes to ``<workdir>/<name>.log``."""

    def __init__(
        self, name: str, argv: Sequence[str], workdir: Path, env: dict[str, str] | None = None
    ) -> None:
        """Describe the process; nothing runs until :meth:`start`."""
        self.name = name
        self.argv = list(argv)
        self.workdir = workdir
        self.env = env
        self.log_path = workdir / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The pid of the running child, if started."""
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Start the child in its own session (Ctrl-C in a terminal goes to us, not to it)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def exit_code(self) -> int | None:
        """``None`` while running (or never started), else the exit code."""
        return self._proc.poll() if self._proc else None

    @property
    def running(self) -> bool:
        """Whether the child has been started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "".join(text.splitlines(keepends=True)[-lines:])

    def log_contains(self, needle: str) -> bool:
        """Whether the log mentions ``needle`` (used to explain start failures)."""
        try:
            return needle in self.log_path.read_text(errors="replace")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the child at once (a crash, for fault tests) and reap it."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGKILL)
            self._proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL; then reap. Safe to call twice."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
