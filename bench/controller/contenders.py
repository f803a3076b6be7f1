"""The controllers under test, each run as its own process, and how to watch them.

Place in the pipeline: ``bench.controller.__main__`` asks :func:`available` for the contenders
it can run (building the Go program once, checking that kopf is installed), then runs each
phase in a :class:`Proc`, which reads the controller's stdout protocol and its RSS.

The protocol (one line each, times in Unix nanoseconds): ``START <t>`` before the controller
starts, ``SYNCED <t>`` once its cache holds the first full list (kopf, which keeps no cache:
once it has handled ``--expect`` objects), ``R <name> <t>`` whenever a reconcile starts.
Every side buffers its ``R`` lines and flushes every 50 ms (the stamps are taken when the
reconcile starts, so only the driver's view of progress lags), because one pipe write per
reconcile wakes the driver each time and cost ~0.1 ms a reconcile on a busy machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CEILING = "apiserver-ceiling"
"""Not a controller: client-go writers with no cache or queue (the Go program's ``-ceiling``)."""

BURST_WORKERS = 100
"""kuar's concurrency for bursty work in its guide (docs/guide/concurrency.md): the pool size."""
BURST_KUAR = f"kuar-workers{BURST_WORKERS}"
"""kuar with ``BURST_WORKERS`` concurrent reconciles, whatever ``--workers`` says."""

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


@dataclass(frozen=True)
class Contender:
    """A controller program: its column name and the argv that runs it."""

    name: str
    argv: tuple[str, ...]
    ceiling: bool = False
    """Not a controller: the API server's ceiling, measured only in the cold start with writes."""
    workers: int | None = None
    """Its own number of workers (a ceiling row's writers), else the run's ``--workers``."""

    def command(self, kubeconfig: Path, ns: str, workers: int, expect: int = 0) -> list[str]:
        """The full command for one run against ``ns``."""
        return [*self.argv, "--kubeconfig", str(kubeconfig), "--namespace", ns,
                "--workers", str(self.workers or workers), "--expect", str(expect)]


def ceiling_name(writers: int) -> str:
    """The row name of the API server's ceiling with ``writers`` client-go writers."""
    return f"{CEILING}-{writers}"


def build_go() -> tuple[Path | None, str]:
    """Build (or reuse) ``go/``'s binary outside the repository; (path, "") or (None, why)."""
    go = shutil.which("go")
    if go is None:
        return None, "go not found on PATH"
    sources = [*sorted((HERE / "go").glob("*.go")), HERE / "go/go.mod", HERE / "go/go.sum"]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    cache = Path(os.environ.get("KUAR_CACHE_DIR", Path.home() / ".cache/kuar"))
    binary = cache / "bench" / "controller" / digest / "ctrlbench"
    if binary.exists():
        return binary, ""
    print(f"building the controller-runtime program into {binary.parent} (once; minutes cold)",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="kuar-ctrlbench-") as tmp:
        for p in sources:
            shutil.copy(p, tmp)
        env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
        out = subprocess.run([go, "build", "-trimpath", "-o", f"{tmp}/ctrlbench", "."],
                             cwd=tmp, env=env, capture_output=True, text=True, timeout=1200)
        if out.returncode != 0:
            return None, f"go build failed: {(out.stderr or out.stdout).strip()[-800:]}"
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(f"{tmp}/ctrlbench", binary)
    return binary, ""


def available(wanted: list[str], ceiling_writers: tuple[int, ...] = (10,),
              ) -> tuple[list[Contender], dict[str, str]]:
    """The contenders among ``wanted`` that can run, and why the others cannot.

    ``CEILING`` in ``wanted`` stands for one ceiling row per count of ``ceiling_writers``.
    """
    found: list[Contender] = []
    missing: dict[str, str] = {}
    for name in wanted:
        if name in ("kuar", BURST_KUAR):
            workers = BURST_WORKERS if name == BURST_KUAR else None
            found.append(Contender(name, (sys.executable, "-m", "bench.controller.kuar_side"),
                                   workers=workers))
        elif name in ("kopf", "kopf-limit10"):
            if importlib.util.find_spec("kopf") is None:
                missing[name] = "kopf is not installed (pip install -e '.[bench]')"
            else:
                extra = ("--limit-10",) if name == "kopf-limit10" else ()
                found.append(Contender(name, (sys.executable, "-m",
                                              "bench.controller.kopf_side", *extra)))
        elif name in ("controller-runtime", "controller-runtime-unstructured", CEILING):
            binary, why = build_go()
            if binary is None:
                missing[name] = why
            elif name == CEILING:
                found += [Contender(ceiling_name(w), (str(binary), "-ceiling"), ceiling=True,
                                    workers=w) for w in ceiling_writers]
            else:
                extra = ("-unstructured",) if name.endswith("unstructured") else ()
                found.append(Contender(name, (str(binary), *extra)))
        else:
            raise ValueError(f"unknown contender {name!r}")
    return found, missing


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class Proc:
    """One running controller: its stdout protocol parsed as it arrives."""

    proc: asyncio.subprocess.Process
    stderr_path: Path
    start: float | None = None
    start_cpu: float | None = None
    """The process's CPU seconds when its ``START`` line arrived (imports done)."""
    synced: float | None = None
    first: dict[str, float] = field(default_factory=dict)
    """Wall-clock time of the first reconcile start of each object name."""
    reconciles: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def launch(cls, argv: list[str], stderr_path: Path) -> Proc:
        """Start ``argv`` (cwd: the repository root) and read its stdout."""
        with stderr_path.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=err,
                stdin=asyncio.subprocess.DEVNULL, limit=1 << 20,
            )
        self = cls(proc, stderr_path)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        first = self.first
        async for raw in self.proc.stdout:
            parts = raw.split()
            if not parts:
                continue
            tag = parts[0]
            if tag == b"R" and len(parts) == 3:
                self.reconciles += 1
                name = parts[1].decode()
                if name not in first:
                    first[name] = int(parts[2]) / 1e9
            elif tag == b"START":
                self.start = int(parts[1]) / 1e9
                with contextlib.suppress(OSError):
                    self.start_cpu = cpu_seconds(self.proc.pid)
            elif tag == b"SYNCED":
                self.synced = int(parts[1]) / 1e9
            self._changed.set()
        self._changed.set()

    def _why_dead(self) -> str:
        tail = self.stderr_path.read_text(errors="replace")[-1500:]
        return f"controller exited with {self.proc.returncode}; stderr ends:\n{tail}"

    async def until(self, check: object, timeout: float, what: str) -> None:
        """Wait until ``check()`` is true; raises with the controller's stderr otherwise."""
        assert callable(check)
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc.returncode is not None or (self._reader and self._reader.done()):
                raise RuntimeError(f"waiting for {what}: {self._why_dead()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{what} not within {timeout:.0f} s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))

    def rss_kib(self) -> int:
        """The process's resident set size now."""
        return rss_kib(self.proc.pid)

    def cpu_seconds(self) -> float:
        """The process's CPU time so far (user + system)."""
        return cpu_seconds(self.proc.pid)

    async def stop(self, timeout: float = 15.0, *, kill: bool = False) -> None:
        """SIGTERM (SIGKILL with ``kill``), SIGKILL after ``timeout`` s; wait for stdout."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
