"""One child process of the local control plane: started, logged, and stopped with its group.

Place in the pipeline: :mod:`kuar.testing.controlplane` and the local node start every binary
through :class:`Process`.

Guarantees: the child runs in its own session, so its process group is its pid and holds the
child and whatever it starts (unless they leave it on purpose). :meth:`Process.stop` signals
that group, SIGTERM and, after the timeout, SIGKILL, so grandchildren go with the child;
:meth:`Process.kill` SIGKILLs the group at once. The group is signalled only while the child is
not yet reaped (its pid, and so its group id, is still this object's: a zombie holds it), and
once the child has exited a last SIGKILL goes to the group before reaping, so members that
ignored SIGTERM do not outlive it; :meth:`Process.exit_code` does the same when it first sees
the child gone (a container's processes end with its main process). Nothing is ever looked
up by name. On Linux the child also gets SIGKILL if the Python thread that started it dies, so
a crashed test run does not leak an API server.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
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
        """``None`` while running (or never started), else the exit code.

        Once the child has exited, what is left of its group is SIGKILLed before it is reaped,
        as a container's processes end with its main process.
        """
        if self._proc is None:
            return None
        if self._proc.returncode is None and self._exited():
            self._signal_group(signal.SIGKILL)
        return self._proc.poll()

    @property
    def running(self) -> bool:
        """Whether the child has been started and has not exited."""
        return self._proc is not None and self.exit_code() is None

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

    def _exited(self) -> bool:
        """Whether the child has exited, without reaping it (its pid stays ours)."""
        assert self._proc is not None
        try:
            info = os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped elsewhere (poll)
            return True
        return info is not None

    def _signal_group(self, sig: int) -> None:
        """Signal the child's process group; only while the child is unreaped."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the child and its process group at once (a crash, for fault tests); reap."""
        if self._proc is not None and self._proc.returncode is None:
            self._signal_group(signal.SIGKILL)
            self._proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, wait up to ``timeout`` s, then SIGKILL it; reap. Safe twice."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        if not self._exited():
            self._signal_group(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while not self._exited() and time.monotonic() < deadline:
                time.sleep(0.02)
        self._signal_group(signal.SIGKILL)  # the child, if still there; members ignoring TERM
        proc.wait()
