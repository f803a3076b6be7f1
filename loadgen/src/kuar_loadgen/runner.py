"""Running a spec on every core of the pod: worker processes, a shared start, merged results.

Place in the pipeline: the CLI (:mod:`kuar_loadgen.cli`) calls :func:`run`; it splits the pod's
share of the schedule into one :class:`~kuar_loadgen.schedule.Slot` per process, starts the
workers (:func:`kuar_loadgen.worker.run_slot`), reports live :class:`Progress` to an observer
(progress bar, Prometheus) and merges the processes' results.

Guarantees:

- All processes start from the same wall-clock ``t0``, chosen after every process is ready
  (imports done, event loop built, connections opening, garbage collected), or
  ``spec.start_at`` (or the start gate's time: the run's start barrier) when that is still
  ahead; so start-up cost never shows as lateness.
- One process runs in the calling process (no fork), which keeps the single-core benchmark and
  ``taskset`` pinning simple; several processes are started with ``spawn`` (no inherited
  threads or event loops).

- Worker processes die with their parent: a worker whose parent is gone (even SIGKILLed, with
  no chance to clean up) exits at once on Linux (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) and
  within :data:`PARENT_CHECK_INTERVAL` seconds elsewhere (a watchdog thread that sees its
  parent pid change), so no orphan keeps sending load.

Errors: a worker process that fails or dies makes :func:`run` raise :class:`WorkerError` after
stopping the others.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from kuar_loadgen.result import LoadResult, merge_results
from kuar_loadgen.schedule import Slot, slot_count, slots
from kuar_loadgen.spec import LoadSpec, available_cpus
from kuar_loadgen.worker import COUNTERS, run_slot

START_MARGIN = 0.05
"""Seconds between choosing ``t0`` and ``t0`` itself, so every process has received it."""
PARENT_CHECK_INTERVAL = 0.5
"""How often a worker checks that its parent still runs (the watchdog, besides prctl)."""
_PR_SET_PDEATHSIG = 1
READY_TIMEOUT = 60.0
"""How long worker processes may take to start (imports on a slow, throttled pod)."""


class WorkerError(RuntimeError):
    """A worker process failed; the message carries its error."""


@dataclass(frozen=True, kw_only=True)
class Progress:
    """A live snapshot of the whole pod, summed over processes."""

    elapsed: float
    """Seconds since ``t0`` (negative before the start)."""
    duration: float
    """The run's configured duration."""
    total: int
    """Requests this pod will issue in all."""
    sent: int
    responses: int
    errors: int
    outstanding: int
    """Requests queued for a connection or in flight."""
    p50_ms: float
    """Largest per-process median latency so far (an upper bound of the pod's)."""
    p99_ms: float
    """Largest per-process p99 latency so far."""
    target_rps: float


Observer = Callable[[Progress], None]


def processes_for(spec: LoadSpec) -> int:
    """How many processes a spec runs: ``spec.processes`` or one per available core."""
    return spec.processes or available_cpus()


def run(spec: LoadSpec, *, observer: Observer | None = None, interval: float = 0.25,
        start_gate: StartGate | None = None) -> LoadResult:
    """Run the spec to the end and return the pod's merged result.

    ``start_gate``, when given, is called (it may block) once every process is set up and
    returns the shared start in Unix seconds, instead of ``spec.start_at``: the start barrier
    of a LoadTest run (:mod:`kuar_loadgen.barrier`). Whatever it raises ends the run before
    anything is sent.
    """
    n = processes_for(spec)
    plan = slots(shard_index=spec.shard_index, shard_count=spec.shard_count, processes=n)
    run_total = spec.profile().total
    total = sum(slot_count(run_total, s) for s in plan)
    # Shared memory only when there are other processes to share with.
    counters: Any = ([0] * COUNTERS if n == 1 else
                     multiprocessing.get_context("spawn").Array("q", n * COUNTERS, lock=False))
    snap = _Snapshotter(spec, counters, n, total)
    if n == 1:
        return _run_here(spec, plan[0], counters, snap, observer, interval, start_gate)
    return _run_processes(spec, plan, counters, snap, observer, interval, start_gate)


StartGate = Callable[[], float]
"""Blocks until the run may start; returns the shared start time (Unix seconds)."""


def _start(spec: LoadSpec, gate: StartGate | None = None) -> float:
    at = gate() if gate is not None else spec.start_at
    now = time.time() + START_MARGIN
    return at if at is not None and at > now else now


def _run_here(spec: LoadSpec, slot: Slot, counters: Any, snap: _Snapshotter,
              observer: Observer | None, interval: float,
              gate: StartGate | None = None) -> LoadResult:
    def start() -> float:
        t0 = snap.t0 = _start(spec, gate)
        return t0

    stop = threading.Event()
    thread = None
    if observer is not None:
        thread = threading.Thread(target=_observe, args=(snap, observer, interval, stop),
                                  name="kuar-loadgen-progress", daemon=True)
        thread.start()
    try:
        return run_slot(spec, slot, start=start, counters=counters, counters_base=0)
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=2)
        if observer is not None:
            observer(snap.take())


def _observe(snap: _Snapshotter, observer: Observer, interval: float,
             stop: threading.Event) -> None:
    while not stop.wait(interval):
        observer(snap.take())


def _run_processes(spec: LoadSpec, plan: Sequence[Slot], counters: Any, snap: _Snapshotter,
                   observer: Observer | None, interval: float,
                   gate: StartGate | None = None) -> LoadResult:
    ctx = multiprocessing.get_context("spawn")
    procs: list[Any] = []
    pipes: list[Connection] = []
    try:
        for i, slot in enumerate(plan):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_child_main, name=f"kuar-loadgen-{i}", daemon=True,
                            args=(spec.to_dict(), slot.offset, slot.stride, child, counters,
                                  i * COUNTERS, os.getpid()))
            p.start()
            child.close()
            procs.append(p)
            pipes.append(parent)
        deadline = time.monotonic() + READY_TIMEOUT
        for pipe in pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise WorkerError("a worker process did not start in time")
            _expect(pipe.recv(), "ready")
        t0 = _start(spec, gate)
        snap.t0 = t0
        for pipe in pipes:
            pipe.send(t0)
        results: dict[int, LoadResult] = {}
        waiting = dict(enumerate(pipes))
        while waiting:
            for ready in wait(list(waiting.values()), timeout=interval):
                idx = next(k for k, v in waiting.items() if v is ready)
                try:
                    msg = waiting[idx].recv()
                except EOFError:
                    raise WorkerError(f"worker process {idx} died "
                                      f"(exit code {procs[idx].exitcode})") from None
                results[idx] = LoadResult.from_dict(_expect(msg, "result"))
                del waiting[idx]
            if observer is not None:
                observer(snap.take())
        for p in procs:
            p.join(timeout=5)
        return merge_results([results[i] for i in range(len(plan))], as_shards=False)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        for pipe in pipes:
            pipe.close()


def _expect(msg: Any, kind: str) -> Any:
    if isinstance(msg, tuple) and len(msg) == 2 and msg[0] == kind:
        return msg[1]
    if isinstance(msg, tuple) and len(msg) == 2 and msg[0] == "error":
        raise WorkerError(str(msg[1]))
    raise WorkerError(f"unexpected message from a worker: {msg!r}")


def _die_with_parent(parent: int) -> None:
    """End this worker when ``parent`` is gone: prctl on Linux, and a watchdog thread."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError, TypeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_INTERVAL)
        os._exit(EXIT_ORPHANED)

    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(EXIT_ORPHANED)
    threading.Thread(target=watch, name="kuar-loadgen-parent-watch", daemon=True).start()


EXIT_ORPHANED = 128 + 9
"""A worker's exit code when it ends because its parent is gone (as if SIGKILLed)."""


def _child_main(spec_dict: dict[str, Any], offset: int, stride: int, pipe: Connection,
                counters: Any, base: int, parent: int) -> None:
    _die_with_parent(parent)
    try:
        spec = LoadSpec.from_dict(spec_dict)

        def start() -> float:
            pipe.send(("ready", None))
            return float(pipe.recv())

        result = run_slot(spec, Slot(offset=offset, stride=stride), start=start,
                          counters=counters, counters_base=base)
        pipe.send(("result", result.to_dict()))
    except BaseException as e:  # report anything, including KeyboardInterrupt, to the parent
        with contextlib.suppress(OSError):
            pipe.send(("error", f"{type(e).__name__}: {e}"))
        raise
    finally:
        pipe.close()


class _Snapshotter:
    def __init__(self, spec: LoadSpec, counters: Any, n: int, total: int) -> None:
        self.spec = spec
        self.counters = counters
        self.n = n
        self.total = total
        self.t0: float | None = None

    def take(self) -> Progress:
        c = list(self.counters)
        rows = [c[i * COUNTERS:(i + 1) * COUNTERS] for i in range(self.n)]
        elapsed = 0.0 if self.t0 is None else time.time() - self.t0
        return Progress(
            elapsed=elapsed, duration=self.spec.duration, total=self.total,
            sent=sum(r[0] for r in rows), responses=sum(r[1] for r in rows),
            errors=sum(r[2] for r in rows), outstanding=sum(r[3] for r in rows),
            p50_ms=max(r[4] for r in rows) / 1000, p99_ms=max(r[5] for r in rows) / 1000,
            target_rps=self.spec.shard_rps)
