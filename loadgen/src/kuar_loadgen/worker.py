"""One worker process: an event loop whose scheduler issues its slot of requests at their due times.

Place in the pipeline: :mod:`kuar_loadgen.runner` starts one :func:`run_slot` per process (or
calls it directly for one process); it drives :mod:`kuar_loadgen._client` pools and returns the
process's :class:`~kuar_loadgen.result.LoadResult`.

Guarantees:

- Open loop: the scheduler issues request ``i`` at ``t0 + i / rate`` (or when the stages'
  profile says, :mod:`kuar_loadgen.stages`) whatever the server does;
  it never waits for a response or a connection (those waits are counted from the due time).
  A request that waited half its timeout for a connection is dropped and counted
  (``error_kinds["dropped"]``), so past its capacity a worker keeps delivering its capacity
  (:mod:`kuar_loadgen._client`).
- Requests already due when the scheduler wakes are all issued in that wake-up, in due order;
  so are those due when a connection comes free with nothing waiting (between wake-ups), so
  a capped pool never idles while a request is due. None is issued before its due time. How
  late each was written is recorded as ``lateness_ms``.
- The run ends when every request has completed or timed out (at most ``timeout`` plus one
  sweep after the last due time); then all connections are closed.

Caveats: timers have a resolution of about 1 ms (epoll and libuv), so requests are written up
to ~1 ms after their due time and that lateness is part of the measured latency. The
scheduler does not spin to do better, so an idle worker uses no CPU between requests.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Callable, MutableSequence
from dataclasses import replace
from typing import Any

from kuar_loadgen._client import USER_AGENT, Pool, Request, request_bytes, ssl_context
from kuar_loadgen.mix import RequestKind, body_of, weighted_order, wire
from kuar_loadgen.recorder import Recorder
from kuar_loadgen.result import LoadResult
from kuar_loadgen.schedule import Slot, slot_count
from kuar_loadgen.spec import LoadSpec, Target
from kuar_loadgen.thresholds import LATENCY, parse_thresholds

COUNTERS = 6
"""Slots per process in the live counters array: sent, responses, errors, outstanding,
latency p50 (us), latency p99 (us)."""

WARM_SECONDS = 0.005
"""Connections opened before the start: enough for this many seconds of requests at 1 each
(a 5 ms service); more are opened on demand."""

GC_THRESHOLD = 7_000
"""Young-generation threshold of the garbage collector while a worker runs (default 700)."""

MIN_SLEEP = 0.001
"""Shortest scheduler sleep: the timer resolution of epoll and libuv; shorter sleeps would
either round to the same or spin."""


def loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop to run: uvloop when asked for or available (``auto``)."""
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def run_slot(spec: LoadSpec, slot: Slot, *, start: Callable[[], float],
             counters: MutableSequence[int] | None = None, counters_base: int = 0) -> LoadResult:
    """Run one slot to the end in a new event loop.

    ``start`` is called (in a thread; it may block) once the worker is set up - loop built,
    connections opening, garbage collected - and returns the shared start ``t0`` in Unix
    seconds. Set-up therefore never shows as lateness.
    """
    with asyncio.Runner(loop_factory=loop_factory(spec.loop)) as runner:
        return runner.run(_Worker(spec, slot, start, counters, counters_base).run())


class _Worker:
    def __init__(self, spec: LoadSpec, slot: Slot, start: Callable[[], float],
                 counters: MutableSequence[int] | None, base: int) -> None:
        self.spec = spec
        self.slot = slot
        self.start = start
        self.counters = counters
        self.base = base
        self.abort = AbortCheck(spec) if spec.abort_on_fail else None
        self.aborted = ""
        self.issued = 0
        self._plan: list[tuple[Pool, bytes]] = []
        self._t0 = 0.0
        self._count = 0
        self._next_i = 0
        self._due = spec.profile().due

    async def run(self) -> LoadResult:
        spec, slot = self.spec, self.slot
        loop = asyncio.get_running_loop()
        rec = Recorder(time.monotonic())
        targets = spec.targets()
        tls = ssl_context(spec) if any(t.scheme == "https" for t in targets) else None
        pools: dict[tuple[Any, ...], Pool] = {}
        plan: list[tuple[Pool, bytes]] = []
        for t in targets:
            pool = pools.get(t.origin)
            if pool is None:
                pool = pools[t.origin] = Pool(
                    loop=loop, target=t, ssl=tls if t.scheme == "https" else None,
                    max_connections=spec.connections, timeout=spec.timeout, recorder=rec)
            plan.append((pool, request_bytes(t, spec.headers)))
        if spec.requests:  # the mix: one entry per request of the weighted rotation
            kinds = [mix_bytes(spec, t, k, i)
                     for i, (t, k) in enumerate(zip(targets, spec.requests, strict=True))]
            plan = [(plan[k][0], kinds[k]) for k in weighted_order(
                [k.weight for k in spec.requests])]
        count = slot_count(spec.profile().total, slot)
        # Open the connections a few ms of traffic need before t0, so the first second is not
        # slowed by connection set-up (TCP and TLS handshakes) that steady state never pays.
        per_pool = slot_target_rps(spec, slot) / len(pools)
        for pool in pools.values():
            pool.warm(math.ceil(per_pool * WARM_SECONDS))
        # Long-lived objects would otherwise be rescanned by every collection during the run;
        # the full collection itself (tens of ms after the imports) happens before t0.
        gc.collect()
        gc.freeze()
        t0_wall = await loop.run_in_executor(None, self.start)
        # Map the shared wall-clock start onto this process's monotonic clock.
        t0 = time.monotonic() + (t0_wall - time.time())
        rec.restart(t0)
        # Each request allocates a few container objects, so the default threshold (700) ran a
        # young collection every ~200 requests: ~3 % of a worker's CPU at 30,000/s (py-spy).
        # The hot path makes no reference cycles per request; a larger threshold keeps memory
        # bounded and collects a tenth as often. Restored below, with the freeze.
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
        sweeper = loop.create_task(self._sweep(list(pools.values()), rec))
        # A connection coming free issues what is already due at once, instead of idling until
        # the scheduler's next wake-up (up to a timer tick, ~1 ms): with a capped pool that
        # idle time, not the core, bounded the rate (decision 0006).
        for pool in pools.values():
            pool.on_idle = self.issue_due
        try:
            await self._schedule(plan, t0, count)  # then issue_due has nothing left to issue
            await self._drain(list(pools.values()), t0)
        finally:
            sweeper.cancel()
            for pool in pools.values():
                pool.on_idle = None
                pool.close()
            await asyncio.sleep(0)
            gc.set_threshold(*thresholds)
            gc.unfreeze()
        self._publish(rec, 0, percentiles=False)
        # an aborted run's requests are those it sent: the rest were never due to anyone
        result = rec.result(requests=self.issued if self.aborted else count,
                            target_rps=slot_target_rps(spec, slot), duration=spec.duration,
                            started_at=t0_wall, end=time.monotonic())
        return replace(result, aborted=self.aborted) if self.aborted else result

    async def _schedule(self, plan: list[tuple[Pool, bytes]], t0: float, count: int) -> None:
        self._plan, self._t0, self._count = plan, t0, count
        self._next_i = self.slot.offset
        monotonic, sleep = time.monotonic, asyncio.sleep
        due = self._due
        while self.issued < count and not self.aborted:
            now = monotonic()
            next_due = t0 + due(self._next_i)
            if next_due > now:
                delay = next_due - now
                await sleep(delay if delay > MIN_SLEEP else MIN_SLEEP)
            self.issue_due()

    def issue_due(self) -> None:
        """Issue, in due order, every request due by now (never one before its due time)."""
        count, issued = self._count, self.issued
        if issued >= count or self.aborted:
            return
        now = time.monotonic()
        t0, due, plan, i = self._t0, self._due, self._plan, self._next_i
        stride, n_targets = self.slot.stride, len(plan)
        while issued < count:
            next_due = t0 + due(i)
            if next_due > now:
                break
            pool, data = plan[i % n_targets]  # target_index(i, n_targets), inlined
            i += stride
            issued += 1
            self._next_i, self.issued = i, issued  # kept current before each hand-over
            pool.submit(Request(next_due, data))

    async def _drain(self, pools: list[Pool], t0: float) -> None:
        spec = self.spec
        deadline = t0 + spec.duration + spec.timeout + 1.0
        # Polling keeps the hot path free of completion bookkeeping; 5 ms adds nothing to a run.
        while any(p.outstanding() for p in pools) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        now = time.monotonic()
        for p in pools:
            p.sweep(now, expire_all=True)  # whatever is left has timed out

    async def _sweep(self, pools: list[Pool], rec: Recorder) -> None:
        interval = min(0.1, self.spec.timeout / 10)
        last_publish = 0.0
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for p in pools:
                p.sweep(now)
            # Live percentiles are of the last second's responses.
            slow = now - last_publish >= 1.0
            if slow:
                last_publish = now
                if self.abort is not None and not self.aborted:
                    self.aborted = self.abort.check(rec)
            self._publish(rec, sum(p.outstanding() for p in pools), percentiles=slow)

    def _publish(self, rec: Recorder, outstanding: int, *, percentiles: bool) -> None:
        # also bounds its memory; and keeps the second's p50/p99 for the report
        recent = rec.take_recent(time.monotonic()) if percentiles else None
        c = self.counters
        if c is None:
            return
        b = self.base
        c[b], c[b + 1], c[b + 2], c[b + 3] = rec.sent, rec.responses, rec.errors, outstanding
        if recent is not None:
            c[b + 4], c[b + 5] = recent


class AbortCheck:
    """``abort_on_fail``: whether the run so far has crossed a threshold for good.

    Cheap enough for the event loop: the latencies of the last second (the recorder's live
    window) are counted against each latency threshold's value and summed, so ``p99 < 50ms``
    is crossed once more than 1 % of all responses so far took 50 ms or more; ``errorRate``
    uses the counts. Nothing is judged before :data:`ABORT_MIN_RESPONSES` outcomes.
    ``achievedRate`` and ``mean`` are judged at the end only.
    """

    def __init__(self, spec: LoadSpec) -> None:
        """Keep the thresholds that a partial run can cross for good."""
        self.latency = [t for t in parse_thresholds(spec.thresholds)
                        if t.metric in LATENCY and t.metric != "mean" and t.op in ("<", "<=")]
        self.errors = [t for t in parse_thresholds(spec.thresholds)
                       if t.metric == "errorRate" and t.op in ("<", "<=")]
        self.above = [0] * len(self.latency)
        self.seen = 0

    def check(self, rec: Recorder) -> str:
        """Count the live window (before it is taken); the reason to abort, or ``""``."""
        window = rec.recent
        self.seen += len(window)
        for k, t in enumerate(self.latency):
            cut = t.value * 1000  # us
            self.above[k] += sum(1 for v in window if (v >= cut if t.op == "<" else v > cut))
        done = rec.responses + rec.failed
        if done < ABORT_MIN_RESPONSES:
            return ""
        for k, t in enumerate(self.latency):
            allowed = (100.0 - LATENCY[t.metric]) / 100.0
            if self.seen and self.above[k] / self.seen > allowed:
                return f"threshold {t.text} crossed ({self.above[k]} of {self.seen} slower)"
        for t in self.errors:
            rate = 100.0 * rec.errors / done
            if not (rate < t.value if t.op == "<" else rate <= t.value):
                return f"threshold {t.text} crossed (errorRate {rate:.3g}%)"
        return ""


ABORT_MIN_RESPONSES = 50
"""Outcomes a worker sees before ``abort_on_fail`` may stop it (a few slow first requests
alone do not end a run)."""


def mix_bytes(spec: LoadSpec, target: Target, kind: RequestKind, index: int) -> bytes:
    """The wire bytes of one kind of the mix (the spec's headers, then the kind's)."""
    return wire(kind.method, target.path, target.host_header, USER_AGENT,
                [*spec.headers, *kind.headers], body_of(kind, index))


def slot_target_rps(spec: LoadSpec, slot: Slot) -> float:
    """The rate a slot issues on average: the run's mean rate divided by the stride."""
    return spec.mean_rps / slot.stride
