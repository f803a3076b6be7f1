"""Controller runtime benchmark: kuar beside kopf and controller-runtime, in one run.

Run: ``.venv/bin/python -m bench.controller [--quick] [--contenders kuar,kopf,controller-runtime]``

On a private local control plane (etcd + kube-apiserver), each contender runs as its own
process, one at a time, with the same trivial reconcile (set ``status.observedGeneration``
with a merge patch of the status subresource), the same worker concurrency and no client-side
rate limiting:

1. burst: N objects created at once (``--create-concurrency`` requests in flight): time
   until the driver's watch has seen every status, objects/s, create-to-status p50/p99;
2. steady: creates at ``--rate``/s, open loop, for ``--steady-seconds``: event-to-reconcile-
   start p50/p99 (the controller's wall-clock stamp at reconcile start minus the time the
   driver's create request completed);
3. cache: a fresh process over M existing, already reconciled objects: time from the
   controller's start to a synced cache, and (RSS then - RSS of the phase 1-2 process with
   one object) / M.

kopf settings and the reasons for them are in ``kopf_side.py``; the controller-runtime program
is ``go/main.go`` (built once into ``~/.cache/kuar/bench/controller/<hash>/``). A missing kopf
or a failed Go build drops that column (its ratio is ``nan``). Full mode uses the issue's
numbers (2,000 / 100/s for 60 s / 10,000); ``--quick`` uses 500 / 100/s for 5 s / 2,000.
The last line is ``ratio_vs_controller_runtime=R ratio_vs_kopf=K p99_ms=P kib_per_object=M``
(kuar's throughput over theirs, kuar's steady p99, kuar's KiB per cached object).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from bench.controller.contenders import Contender, Proc, available
from bench.controller.workload import (
    StatusWatch,
    burst,
    create,
    create_namespace,
    install_crd,
    populate,
    steady,
)
from kuar.client import Client, load_config
from kuar.testing import ControlPlane

ALL = ("kuar", "kopf", "controller-runtime")
CACHE_NS = "cached"


@dataclass(frozen=True, kw_only=True)
class Sizes:
    """How much load each phase makes."""

    burst: int
    rate: float
    steady_seconds: float
    cached: int
    workers: int
    create_concurrency: int
    settle: float


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def measure(c: Contender, kubeconfig: Path, client: Client, s: Sizes,
                  logs: Path) -> dict[str, float]:
    """All three phases for one contender; figures by row key."""
    f: dict[str, float] = {}
    ns = f"{c.name}-run"
    await create_namespace(client, ns)
    await create(client, ns, "sentinel", 0)
    watch = StatusWatch(client, ns)
    await watch.start()
    proc = await Proc.launch(c.command(kubeconfig, ns, s.workers), logs / f"{c.name}-run.err")
    try:
        # Phases 1-2 share this process; its RSS with one cached object is the baseline.
        await proc.until(lambda: "sentinel" in proc.first, 120, f"{c.name}: first reconcile")
        await watch.wait_for({"sentinel"}, 60)
        await asyncio.sleep(s.settle)
        f["rss_base"] = proc.rss_kib() / 1024

        cpu = proc.cpu_seconds()
        t0, created = await burst(client, ns, s.burst, s.create_concurrency)
        f["creates_s"] = max(created.values()) - t0
        if not await watch.wait_for(set(created), 60 + s.burst / 20):
            raise TimeoutError(f"{c.name}: burst not reconciled in time")
        end = max(watch.seen[n] for n in created)
        f["burst_cpu"] = (proc.cpu_seconds() - cpu) * 1e3 / s.burst
        f["burst_s"] = end - t0
        f["throughput"] = s.burst / (end - t0)
        c2s = [(watch.seen[n] - created[n]) * 1e3 for n in created]
        f["burst_p50"], f["burst_p99"] = pct(c2s, 0.5), pct(c2s, 0.99)

        await asyncio.sleep(s.settle)
        cpu = proc.cpu_seconds()
        created = await steady(client, ns, s.rate, s.steady_seconds)
        # An overloaded API server (a busy shared machine) can fall far behind: wait long.
        if not await watch.wait_for(set(created), 120 + 2 * s.steady_seconds):
            raise TimeoutError(f"{c.name}: steady load not reconciled in time")
        f["steady_cpu"] = (proc.cpu_seconds() - cpu) * 1e3 / len(created)
        await proc.until(lambda: created.keys() <= proc.first.keys(), 10, "reconcile stamps")
        e2r = [(proc.first[n] - created[n]) * 1e3 for n in created]
        c2s = [(watch.seen[n] - created[n]) * 1e3 for n in created]
        f["steady_n"] = len(created)
        f["e2r_p50"], f["e2r_p99"] = pct(e2r, 0.5), pct(e2r, 0.99)
        f["steady_c2s_p99"] = pct(c2s, 0.99)
        arrived = [(watch.arrived[n] - created[n]) * 1e3 for n in created]
        f["driver_p50"], f["driver_p99"] = pct(arrived, 0.5), pct(arrived, 0.99)
        f["calls_per_object"] = proc.reconciles / (1 + s.burst + len(created))
    finally:
        await proc.stop()
        await watch.stop()

    proc = await Proc.launch(c.command(kubeconfig, CACHE_NS, s.workers, expect=s.cached),
                             logs / f"{c.name}-cache.err")
    try:
        await proc.until(lambda: proc.synced is not None, 60 + s.cached / 100,
                         f"{c.name}: cache sync")
        assert proc.synced is not None and proc.start is not None
        f["sync_s"] = proc.synced - proc.start
        # Measure once every object has been through a (no-op) reconcile and things settled.
        await proc.until(lambda: len(proc.first) >= s.cached, 60 + s.cached / 100,
                         f"{c.name}: initial reconciles")
        await asyncio.sleep(s.settle)
        f["rss_full"] = proc.rss_kib() / 1024
        f["kib_per_object"] = (f["rss_full"] - f["rss_base"]) * 1024 / s.cached
    finally:
        await proc.stop()
    return f


ROWS: list[tuple[str, str, str]] = [
    # (key, label, format)
    ("creates_s", "burst: creates done (s)", "{:.2f}"),
    ("burst_s", "burst: all reconciled (s)", "{:.2f}"),
    ("throughput", "burst: throughput (objects/s)", "{:.0f}"),
    ("burst_p50", "burst: create-to-status p50 (ms)", "{:.1f}"),
    ("burst_p99", "burst: create-to-status p99 (ms)", "{:.1f}"),
    ("burst_cpu", "burst: controller CPU per object (ms)", "{:.2f}"),
    ("e2r_p50", "steady: event-to-reconcile p50 (ms)", "{:.1f}"),
    ("e2r_p99", "steady: event-to-reconcile p99 (ms)", "{:.1f}"),
    ("driver_p50", "steady: create-to-event at driver p50 (ms)", "{:.1f}"),
    ("driver_p99", "steady: create-to-event at driver p99 (ms)", "{:.1f}"),
    ("steady_c2s_p99", "steady: create-to-status p99 (ms)", "{:.1f}"),
    ("steady_cpu", "steady: controller CPU per object (ms)", "{:.2f}"),
    ("calls_per_object", "reconcile calls per object", "{:.2f}"),
    ("sync_s", "cache: start to synced (s)", "{:.2f}"),
    ("rss_base", "cache: RSS, 1 object (MiB)", "{:.1f}"),
    ("rss_full", "cache: RSS, all objects (MiB)", "{:.1f}"),
    ("kib_per_object", "cache: RSS per object (KiB)", "{:.2f}"),
]


def table(results: dict[str, dict[str, float] | None], names: list[str]) -> str:
    width = max(len(label) for _, label, _ in ROWS) + 2
    cols = [max(12, len(n) + 2) for n in names]
    lines = ["".ljust(width) + "".join(n.rjust(w) for n, w in zip(names, cols, strict=True))]
    for key, label, fmt in ROWS:
        cells = []
        for n, w in zip(names, cols, strict=True):
            r = results.get(n)
            value = r.get(key) if r is not None else None
            cells.append(("-" if value is None else fmt.format(value)).rjust(w))
        lines.append(label.ljust(width) + "".join(cells))
    return "\n".join(lines)


def get(results: dict[str, dict[str, float] | None], name: str, key: str) -> float:
    r = results.get(name)
    return r.get(key, math.nan) if r is not None else math.nan


async def run(args: argparse.Namespace, s: Sizes, wanted: list[str]) -> int:
    started = time.monotonic()
    contenders, missing = available(wanted)
    for name, why in missing.items():
        print(f"skipping {name}: {why}", flush=True)
    logs = Path(tempfile.mkdtemp(prefix="kuar-bench-controller-"))
    results: dict[str, dict[str, float] | None] = {}
    failed = False
    with ControlPlane() as plane:
        client = Client(await load_config(plane.kubeconfig))
        try:
            await install_crd(client)
            await create_namespace(client, CACHE_NS)
            full, bare = await populate(client, CACHE_NS, s.cached)
            print(f"control plane up; {s.cached} objects in namespace {CACHE_NS!r} of {full} "
                  f"bytes of JSON each as served ({bare} without managedFields, which every "
                  f"cache here drops); {time.monotonic() - started:.1f} s", flush=True)
            for c in contenders:
                t = time.monotonic()
                try:
                    results[c.name] = await measure(c, plane.kubeconfig, client, s, logs)
                except Exception:
                    failed = True
                    results[c.name] = None
                    print(f"{c.name} failed (logs in {logs}):\n{traceback.format_exc()}",
                          flush=True)
                print(f"{c.name}: done in {time.monotonic() - t:.1f} s", flush=True)
        finally:
            await client.close()
    if not failed:
        shutil.rmtree(logs, ignore_errors=True)

    names = [n for n in ALL if n in wanted]
    print()
    print(f"bench/controller: {s.workers} workers each; burst {s.burst} objects "
          f"({s.create_concurrency} creates in flight); steady {s.rate:.0f}/s for "
          f"{s.steady_seconds:.0f} s; cache {s.cached} objects")
    print(table(results, names))
    kuar_tput = get(results, "kuar", "throughput")
    r = kuar_tput / get(results, "controller-runtime", "throughput")
    k = kuar_tput / get(results, "kopf", "throughput")
    p = get(results, "kuar", "e2r_p99")
    m = get(results, "kuar", "kib_per_object")
    print()
    print("kopf keeps no object cache: its 'synced' is when it has handled every listed object,")
    print("and its RSS per object is what handling them left behind.")
    for label, value, target, ok in (
        ("throughput vs controller-runtime", r, ">= 0.8x", r >= 0.8),
        ("throughput vs kopf", k, ">= 5x", k >= 5),
        ("steady event-to-reconcile p99 (ms)", p, "<= 50", p <= 50),
        ("RSS per cached object (KiB)", m, "<= 4", m <= 4),
    ):
        verdict = "n/a" if math.isnan(value) else ("met" if ok else "MISSED")
        print(f"target {label}: {value:.2f} (target {target}): {verdict}")
    print(f"total {time.monotonic() - started:.1f} s")
    print(f"ratio_vs_controller_runtime={r:.2f} ratio_vs_kopf={k:.2f} p99_ms={p:.1f} "
          f"kib_per_object={m:.2f}")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (within 60 s)")
    parser.add_argument("--contenders", default=",".join(ALL),
                        help="comma-separated subset of: " + ", ".join(ALL))
    parser.add_argument("--workers", type=int, default=10, help="concurrent reconciles")
    parser.add_argument("--burst", type=int, help="objects created at once")
    parser.add_argument("--rate", type=float, default=100.0, help="steady creates per second")
    parser.add_argument("--steady-seconds", type=float, help="length of the steady load")
    parser.add_argument("--cached", type=int, help="existing objects for the cache phase")
    parser.add_argument("--create-concurrency", type=int, default=64,
                        help="create requests in flight during the burst")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds to wait before reading RSS or starting a phase")
    args = parser.parse_args()
    wanted = [n.strip() for n in args.contenders.split(",") if n.strip()]
    unknown = set(wanted) - set(ALL)
    if unknown:
        parser.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    s = Sizes(
        burst=args.burst or (500 if args.quick else 2000),
        rate=args.rate,
        steady_seconds=args.steady_seconds or (5.0 if args.quick else 60.0),
        cached=args.cached or (2000 if args.quick else 10_000),
        workers=args.workers,
        create_concurrency=args.create_concurrency,
        settle=args.settle,
    )
    try:
        import uvloop  # the driver's own overhead is the same for every contender; keep it low
    except ImportError:
        raise SystemExit(asyncio.run(run(args, s, wanted))) from None
    raise SystemExit(uvloop.run(run(args, s, wanted)))


if __name__ == "__main__":
    main()
