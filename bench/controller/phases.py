"""The benchmark's phases, taken in turns by the contenders.

Place in the pipeline: called by ``bench.controller.__main__`` with the contenders that can
run; uses :mod:`.workload` for load and status watching and :mod:`.contenders` for the
controller processes. Returns one dict of figures per contender (keys = the table's rows)
plus, for the figures sampled more than once, every sample (``samples``).

Only one contender is ever under load: the others' processes idle on their own, quiet
namespaces. Every repeated measure is taken in turns in the order A B C, C B A, A B C, ...
so that a shared machine's load drifting over minutes weighs on every contender alike
instead of on whoever ran last; each contender gets the same number of equal runs, and the
table shows the median (with min and max for the headline figures). Latency percentiles are
repeated figures too: each burst round and each steady slice gives its own p50/p99, and the
table shows their median [min, max] (the pooled percentile is kept as a secondary row), so
one slow moment of the shared API server moves one turn's figure, not a contender's.

The headline phases are the cold starts, where the controller is the bottleneck (no create
traffic competes with it): a fresh process over ``cold_writes`` existing objects that all
need their status written (one write each), and a fresh process over ``cached`` existing,
already reconciled objects (no write at all). Each gives objects/s (from the ``START`` line
to the last status seen by the driver, or to the last reconcile start) and CPU-ms per object
(the process's CPU time over the same span, imports excluded).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from bench.controller.contenders import Contender, Proc
from bench.controller.workload import (
    RESOURCE,
    StatusWatch,
    burst,
    create,
    create_namespace,
    steady,
)
from kuar.client import Client

CACHE_NS = "cached"
IDLE_NS = "idle"
SCALE_NS = "scale"
SCALED = ("kuar", "controller-runtime")
"""The contenders of the scale row (the issue's: kuar and typed controller-runtime)."""


@dataclass(frozen=True, kw_only=True)
class Sizes:
    """How much load each phase makes."""

    burst: int
    """Objects created at once, per round."""
    rounds: int
    """Bursts per contender."""
    rate: float
    """Steady creates per second."""
    steady_seconds: float
    """Length of the steady load per contender (cut into ``slices``)."""
    slices: int
    """Turns the steady load is cut into."""
    cached: int
    """Existing objects for the cache phase."""
    workers: int
    """Concurrent reconciles of every contender."""
    create_concurrency: int
    """Create requests in flight during a burst."""
    settle: float
    """Seconds to wait before each turn, so the last one's stragglers are done."""
    runs: int = 3
    """Cold-start runs per contender (each phase)."""
    cold_writes: int = 1000
    """Existing objects needing a status write in the cold start with writes."""
    scale: int = 0
    """Existing objects of the scale row (0: no scale row)."""
    rss_settle: float = 1.0
    """Seconds to wait before reading RSS."""
    only_cache: bool = False
    """Only the idle and cache figures: no bursts, steady load or cold start with writes."""


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Side:
    """One contender's process, namespace, watch and running totals."""

    contender: Contender
    proc: Proc | None = None
    watch: StatusWatch | None = None
    error: str | None = None
    f: dict[str, float] = field(default_factory=dict)
    burst_seconds: float = 0.0
    creates_seconds: float = 0.0
    burst_cpu: float = 0.0
    burst_c2s: list[float] = field(default_factory=list)
    steady_created: dict[str, float] = field(default_factory=dict)
    steady_turns: list[list[str]] = field(default_factory=list)
    """The names created in each steady slice (its percentiles are taken per turn)."""
    steady_cpu: float = 0.0
    samples: dict[str, list[float]] = field(default_factory=dict)
    """Every sample of the repeated figures (the table shows their median, min, max)."""

    def sample(self, key: str, value: float) -> None:
        """Record one sample of ``key``."""
        self.samples.setdefault(key, []).append(value)

    @property
    def name(self) -> str:
        return self.contender.name

    @property
    def ns(self) -> str:
        return f"{self.contender.name}-run"


_T0 = time.monotonic()


def _progress(what: str) -> None:
    print(f"{time.monotonic() - _T0:6.1f} s  {what}", flush=True)


def turns(sides: list[Side], i: int) -> list[Side]:
    """The still healthy sides in turn ``i``'s order (A B C, then C B A, ...)."""
    healthy = [s for s in sides if s.error is None]
    return healthy if i % 2 == 0 else healthy[::-1]


async def _guarded(side: Side, step: object) -> None:
    """Run one step of ``side``; a failure benches that side only (and is reported)."""
    try:
        await step  # type: ignore[misc]
    except Exception:
        side.error = traceback.format_exc()
        print(f"{side.name} failed:\n{side.error}", flush=True)
        if side.proc is not None:
            await side.proc.stop()


async def _start(side: Side, kubeconfig: Path, client: Client, s: Sizes, logs: Path) -> None:
    await create_namespace(client, side.ns)
    await create(client, side.ns, "sentinel", 0)
    side.watch = StatusWatch(client, side.ns)
    await side.watch.start()
    side.proc = proc = await Proc.launch(
        side.contender.command(kubeconfig, side.ns, s.workers), logs / f"{side.name}-run.err")
    await proc.until(lambda: "sentinel" in proc.first, 120, f"{side.name}: first reconcile")
    await side.watch.wait_for({"sentinel"}, 60)


async def _burst(side: Side, client: Client, s: Sizes, r: int) -> None:
    assert side.proc is not None and side.watch is not None
    cpu = side.proc.cpu_seconds()
    t0, created = await burst(client, side.ns, s.burst, s.create_concurrency, prefix=f"b{r}")
    side.creates_seconds += max(created.values()) - t0
    if not await side.watch.wait_for(set(created), 60 + s.burst / 20):
        raise TimeoutError(f"{side.name}: burst {r} not reconciled in time")
    seen = side.watch.seen
    took = max(seen[n] for n in created) - t0
    side.burst_seconds += took
    side.sample("throughput", s.burst / took)
    side.burst_cpu += side.proc.cpu_seconds() - cpu
    c2s = [(seen[n] - created[n]) * 1e3 for n in created]
    side.burst_c2s += c2s
    side.sample("burst_p50", pct(c2s, 0.5))
    side.sample("burst_p99", pct(c2s, 0.99))


async def _steady(side: Side, client: Client, s: Sizes, k: int) -> None:
    assert side.proc is not None and side.watch is not None
    cpu = side.proc.cpu_seconds()
    created = await steady(client, side.ns, s.rate, s.steady_seconds / s.slices, prefix=f"s{k}")
    # An overloaded API server (a busy shared machine) can fall far behind: wait long.
    if not await side.watch.wait_for(set(created), 120 + 2 * s.steady_seconds / s.slices):
        raise TimeoutError(f"{side.name}: steady slice {k} not reconciled in time")
    side.steady_cpu += side.proc.cpu_seconds() - cpu
    side.steady_created.update(created)
    side.steady_turns.append(list(created))


async def _stamps_in(side: Side) -> None:
    proc = side.proc
    assert proc is not None
    wanted = side.steady_created.keys()
    await proc.until(lambda: wanted <= proc.first.keys(), 10, f"{side.name}: reconcile stamps")


def _summarise(side: Side, s: Sizes) -> None:
    proc, watch, f = side.proc, side.watch, side.f
    assert proc is not None and watch is not None
    total = s.burst * s.rounds
    f["creates_s"] = side.creates_seconds / s.rounds
    f["burst_s"] = side.burst_seconds / s.rounds
    f["throughput"] = median(side.samples["throughput"])
    f["burst_cpu"] = side.burst_cpu * 1e3 / total
    # Per-round percentiles are samples (median [min, max] in the table); these pool them all.
    f["burst_p50_pooled"] = pct(side.burst_c2s, 0.5)
    f["burst_p99_pooled"] = pct(side.burst_c2s, 0.99)
    created = side.steady_created
    e2r = [(proc.first[n] - created[n]) * 1e3 for n in created]
    for names in side.steady_turns:
        side.sample("e2r_p99", pct([(proc.first[n] - created[n]) * 1e3 for n in names], 0.99))
    c2s = [(watch.seen[n] - created[n]) * 1e3 for n in created]
    arrived = [(watch.arrived[n] - created[n]) * 1e3 for n in created]
    f["e2r_p50"], f["e2r_p99_pooled"] = pct(e2r, 0.5), pct(e2r, 0.99)
    f["driver_p50"], f["driver_p99"] = pct(arrived, 0.5), pct(arrived, 0.99)
    # The controller's own share: its reconcile start minus the driver's sight of the event
    # (both watches are fed by the same API server event at about the same moment).
    own = [(proc.first[n] - watch.arrived[n]) * 1e3 for n in created]
    f["own_p99"] = pct(own, 0.99)
    f["steady_c2s_p99"] = pct(c2s, 0.99)
    f["steady_cpu"] = side.steady_cpu * 1e3 / len(created)
    f["calls_per_object"] = proc.reconciles / (1 + total + len(created))


def median(values: list[float]) -> float:
    """The median (nan for none)."""
    return statistics.median(values) if values else math.nan


async def _started(side: Side, proc: Proc, limit: float) -> tuple[float, float]:
    """Wait for ``START``; the wall-clock time it printed and the CPU seconds at that point."""
    await proc.until(lambda: proc.start_cpu is not None, limit, f"{side.name}: start")
    assert proc.start is not None and proc.start_cpu is not None
    return proc.start, proc.start_cpu


@dataclass(frozen=True)
class Fresh:
    """A fresh controller process over existing, already reconciled objects."""

    sync_s: float
    """From its ``START`` line to a synced cache."""
    all_handled_s: float
    """From ``START`` to the last object's first (no-op) reconcile."""
    cpu_s: float
    """CPU seconds over the same span."""
    rss_mib: float
    """RSS once everything settled."""


async def _fresh(side: Side, kubeconfig: Path, ns: str, n: int, s: Sizes, log: Path) -> Fresh:
    proc = await Proc.launch(side.contender.command(kubeconfig, ns, s.workers, expect=n), log)
    try:
        limit = 60 + n / 100
        start, cpu0 = await _started(side, proc, limit)
        await proc.until(lambda: proc.synced is not None, limit, f"{side.name}: cache sync")
        assert proc.synced is not None
        await proc.until(lambda: len(proc.first) >= n, limit, f"{side.name}: initial reconciles")
        took = max(proc.first.values()) - start
        cpu = proc.cpu_seconds() - cpu0
        # Read RSS once every object has been through its (no-op) reconcile and all settled.
        await asyncio.sleep(s.rss_settle)
        return Fresh(proc.synced - start, took, cpu, proc.rss_kib() / 1024)
    finally:
        await proc.stop(kill=True)  # everything is measured; a graceful stop only costs time


async def _idle(side: Side, kubeconfig: Path, s: Sizes, logs: Path, r: int) -> None:
    """A fresh process over one already reconciled object: its RSS once idle."""
    got = await _fresh(side, kubeconfig, IDLE_NS, 1, s, logs / f"{side.name}-idle-{r}.err")
    side.sample("rss_base", got.rss_mib)


async def _cold_read(side: Side, kubeconfig: Path, s: Sizes, logs: Path, r: int) -> None:
    """A fresh process over ``s.cached`` already reconciled objects: no API write at all."""
    got = await _fresh(side, kubeconfig, CACHE_NS, s.cached, s,
                       logs / f"{side.name}-cold-read-{r}.err")
    side.sample("sync_s", got.sync_s)
    # The runtime's own cost per object (list, cache, queue, a no-op reconcile).
    side.sample("all_handled_s", got.all_handled_s)
    side.sample("cold_read_rate", s.cached / got.all_handled_s)
    side.sample("cold_read_cpu", got.cpu_s * 1e3 / s.cached)
    side.sample("rss_full", got.rss_mib)
    # against the same round's idle process with one object (taken just before)
    side.sample("kib_per_object", (got.rss_mib - side.samples["rss_base"][-1]) * 1024 / s.cached)


async def _scale(side: Side, kubeconfig: Path, s: Sizes, logs: Path) -> None:
    """One fresh process over ``s.scale`` objects (full runs only): sync, all handled, RSS."""
    got = await _fresh(side, kubeconfig, SCALE_NS, s.scale, s, logs / f"{side.name}-scale.err")
    side.f["scale_sync_s"], side.f["scale_all_s"] = got.sync_s, got.all_handled_s
    side.f["scale_rss"] = got.rss_mib


async def _cold_write(side: Side, kubeconfig: Path, client: Client, s: Sizes, logs: Path,
                      r: int) -> None:
    """A fresh process over ``s.cold_writes`` objects without status: one write each."""
    ns = f"cold-{side.name}-{r}"
    await create_namespace(client, ns)
    _, created = await burst(client, ns, s.cold_writes, s.create_concurrency, prefix="w")
    watch = StatusWatch(client, ns)
    await watch.start()
    proc = await Proc.launch(
        side.contender.command(kubeconfig, ns, s.workers, expect=s.cold_writes),
        logs / f"{side.name}-cold-write-{r}.err")
    try:
        limit = 60 + s.cold_writes / 20
        start, cpu0 = await _started(side, proc, limit)
        if not await watch.wait_for(set(created), limit):
            raise TimeoutError(f"{side.name}: cold start {r} not reconciled in time")
        cpu = proc.cpu_seconds() - cpu0
        took = max(watch.seen[n] for n in created) - start
        side.sample("cold_write_rate", s.cold_writes / took)
        side.sample("cold_write_cpu", cpu * 1e3 / s.cold_writes)
    finally:
        await proc.stop(kill=True)
        await watch.stop()
        with contextlib.suppress(Exception):  # keep etcd small; not part of any figure
            await client.request("DELETE", RESOURCE.path(ns))


async def measure(contenders: list[Contender], kubeconfig: Path, client: Client, s: Sizes,
                  logs: Path) -> dict[str, dict[str, float] | None]:
    """Every phase for every contender; figures by contender (``None`` if it failed)."""
    sides = [Side(c) for c in contenders if not (c.ceiling and s.only_cache)]
    if not s.only_cache:
        await _load_phases([side for side in sides if not side.contender.ceiling], kubeconfig,
                           client, s, logs)
    for r in range(s.runs):
        for side in turns(sides, r):
            if side.contender.ceiling:  # no controller: only the writes, in the same turns
                await asyncio.sleep(s.settle)
                await _guarded(side, _cold_write(side, kubeconfig, client, s, logs, r))
                continue
            await asyncio.sleep(s.settle)
            await _guarded(side, _idle(side, kubeconfig, s, logs, r))
            if not s.only_cache:
                await asyncio.sleep(s.settle)
                await _guarded(side, _cold_write(side, kubeconfig, client, s, logs, r))
            await asyncio.sleep(s.settle)
            await _guarded(side, _cold_read(side, kubeconfig, s, logs, r))
        _progress(f"cold-start round {r + 1} of {s.runs} done")
    if s.scale:
        for side in turns(sides, 0):
            if side.name in SCALED:
                await _guarded(side, _scale(side, kubeconfig, s, logs))
        _progress("scale row done")
    for side in sides:
        for key, values in side.samples.items():
            # key: the median; key_min, key_max, key_n: the spread and the number of samples
            side.f.setdefault(key, median(values))
            side.f[f"{key}_min"], side.f[f"{key}_max"] = min(values), max(values)
            side.f[f"{key}_n"] = len(values)
    return {side.name: (side.f if side.error is None else None) for side in sides}


async def _load_phases(sides: list[Side], kubeconfig: Path, client: Client, s: Sizes,
                       logs: Path) -> None:
    """The long-running processes: bursts, then the steady load (secondary figures)."""
    try:
        for side in sides:
            await _guarded(side, _start(side, kubeconfig, client, s, logs))
        _progress("controllers up")
        for r in range(s.rounds):
            for side in turns(sides, r):
                await asyncio.sleep(s.settle)
                await _guarded(side, _burst(side, client, s, r))
        _progress("bursts done")
        for k in range(s.slices):
            for side in turns(sides, k):
                await asyncio.sleep(s.settle)
                await _guarded(side, _steady(side, client, s, k))
        _progress("steady load done")
        for side in turns(sides, 0):
            # Stamps are flushed every 50 ms: wait until the last ones are in.
            await _guarded(side, _stamps_in(side))
            if side.error is None:
                _summarise(side, s)
    finally:
        for side in sides:
            if side.proc is not None:
                # Every stamp is in (or the side failed): a graceful stop only costs time.
                await side.proc.stop(kill=True)
            if side.watch is not None:
                with contextlib.suppress(Exception):
                    await side.watch.stop()
