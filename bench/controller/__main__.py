"""Controller runtime benchmark: kuar beside kopf and controller-runtime, in one run.

Run: ``.venv/bin/python -m bench.controller [--quick] [--contenders kuar,kopf,...]``

On a private local control plane (etcd + kube-apiserver), each contender runs as its own
process with the same trivial reconcile (set ``status.observedGeneration`` with a merge patch
of the status subresource) and no client-side rate limiting; only one contender is under load
at a time, in turns A B C / C B A (see ``phases.py``). The contenders (what each was given
and why: docs/decisions/0017-fair-benchmarks.md):

- ``kuar``: a Manager and one controller, 10 concurrent reconciles, uvloop;
  ``kuar-workers100``: the same with 100, what kuar's guide advises for bursty work (one
  per connection of the client's pool; docs/guide/concurrency.md);
- ``kopf``: kopf at its defaults (no worker limit), plus what its docs offer for speed
  (uvloop, no Events posted); ``kopf-limit10``: the settings used before (worker_limit=10,
  idle_timeout=0.01 s), to show the difference;
- ``controller-runtime``: typed Go structs for the kind, as a kubebuilder project has them,
  10 concurrent reconciles; ``controller-runtime-unstructured``: the same on
  ``unstructured.Unstructured`` objects.

Phases:

1. headline, where the controller is the bottleneck: cold start with writes (a fresh process
   over ``--cold-writes`` existing objects, each needing one status write) and cold start
   without writes (a fresh process over ``--cached`` already reconciled objects): objects/s
   and CPU-ms per object, ``--runs`` runs each, median [min, max];
2. burst (secondary; the API server's creates dominate it): N objects created at once,
   ``--rounds`` times: create-to-status p50/p99, objects/s, CPU per object;
3. steady: creates at ``--rate``/s, open loop, for ``--steady-seconds`` in ``--slices`` turns:
   event-to-reconcile p50/p99 and its parts;
4. idle and cache: each round also starts a fresh process over one already reconciled object
   (its RSS once idle: the "RSS, 1 object" row, median of ``--runs``); the cold start
   without writes gives time to a synced cache and RSS per cached object ((its RSS - the
   same round's one-object RSS) / M). ``--only-cache`` runs just these (no bursts, steady
   load or writes): ``--only-cache --cached 10000 --contenders kuar`` is the quick way to
   the two memory targets;
5. scale (``--scale N``, e.g. 100000; never with ``--quick``): one fresh kuar and typed
   controller-runtime process over N existing objects: time to a synced cache, to every
   object reconciled, and RSS; the line before it says how fast the local control plane
   created them.

The machine's load average is printed with the table: other work on a shared machine moves
every figure (see docs/decisions/0008-controller-benchmark.md).

A missing kopf or a failed Go build drops those columns (their ratios are ``nan``). Full mode:
3 runs of 3,000 (writes) / 10,000 (no writes) objects, 3 x 2,000 burst, 100/s for 60 s;
``--quick``: 3 runs of 500 / 2,000, 3 x 250, 100/s for 5 s. The last line is
``ratio_vs_controller_runtime=R ratio_vs_kopf=K p99_ms=P kib_per_object=M
cold_ratio_vs_controller_runtime=C cold_ratio_vs_kopf=F cpu_ms_per_object=U
ceiling_ratio_vs_kopf=X burst_p50_ratio_vs_kopf=B burst100_p50_ratio_vs_kopf=H``: burst
throughput ratios (kuar over typed controller-runtime and kopf at defaults), kuar's steady
p99, KiB per cached object, the cold-start-with-writes objects/s ratios and kuar's CPU-ms per
object there (medians), the highest API server ceiling row over kopf's cold start with
writes, then the burst create-to-status p50 over kopf's for kuar and for kuar with 100
workers.

The ceiling: with ``controller-runtime`` among the contenders, the Go program also runs in
``-ceiling`` mode in the same alternated cold-start turns: no controller, one list, then the
same status patches by client-go goroutines (``--ceiling-writers``, a comma-separated list of
counts, one row each; default: ``--workers``). It is the most any controller with that many
writers can reach against this API server on this machine, so a ratio target above the
highest row (issue 17's ">= 3x kopf") is a property of the machine, not of the controller.

Latency percentiles are taken per turn (each burst round, each steady slice) and shown as the
median [min, max] of the turns, like every other repeated figure: one slow moment of the
shared API server then moves one turn's figure, not the whole contender's. The percentile
pooled over all turns is shown beside them in the secondary table.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.controller.contenders import (
    BURST_KUAR,
    BURST_WORKERS,
    CEILING,
    available,
    ceiling_name,
)
from bench.controller.phases import CACHE_NS, IDLE_NS, SCALE_NS, SCALED, Sizes, measure
from bench.controller.workload import create_namespace, install_crd, populate
from kuar.client import Client, load_config
from kuar.testing import ControlPlane

ALL = ("kuar", BURST_KUAR, "kopf", "kopf-limit10", "controller-runtime",
       "controller-runtime-unstructured")

HEADLINE: list[tuple[str, str, str]] = [
    # (key, label, format) of the cold-start figures, shown as median [min, max]
    ("cold_write_rate", "cold, writes: objects/s", "{:.0f}"),
    ("cold_write_cpu", "cold, writes: CPU ms/object", "{:.3f}"),
    ("cold_read_rate", "cold, no writes: objects/s", "{:.0f}"),
    ("cold_read_cpu", "cold, no writes: CPU ms/object", "{:.3f}"),
]

LATENCY: list[tuple[str, str, str]] = [
    # (key, label, format) of the per-turn percentiles, shown as median [min, max] of the turns
    ("burst_p50", "burst: create-to-status p50 (ms)", "{:.1f}"),
    ("burst_p99", "burst: create-to-status p99 (ms)", "{:.1f}"),
    ("e2r_p99", "steady: event-to-reconcile p99 (ms)", "{:.1f}"),
]


ROWS: list[tuple[str, str, str]] = [
    # (key, label, format)
    ("creates_s", "burst: creates done (s)", "{:.2f}"),
    ("burst_s", "burst: all reconciled (s)", "{:.2f}"),
    ("throughput", "burst: throughput (objects/s)", "{:.0f}"),
    ("burst_p50_pooled", "burst: create-to-status p50, pooled (ms)", "{:.1f}"),
    ("burst_p99_pooled", "burst: create-to-status p99, pooled (ms)", "{:.1f}"),
    ("burst_cpu", "burst: controller CPU per object (ms)", "{:.2f}"),
    ("e2r_p50", "steady: event-to-reconcile p50 (ms)", "{:.1f}"),
    ("e2r_p99_pooled", "steady: event-to-reconcile p99, pooled (ms)", "{:.1f}"),
    ("driver_p50", "steady: create-to-event at driver p50 (ms)", "{:.1f}"),
    ("driver_p99", "steady: create-to-event at driver p99 (ms)", "{:.1f}"),
    ("own_p99", "steady: event-at-driver-to-reconcile p99 (ms)", "{:.1f}"),
    ("steady_c2s_p99", "steady: create-to-status p99 (ms)", "{:.1f}"),
    ("steady_cpu", "steady: controller CPU per object (ms)", "{:.2f}"),
    ("calls_per_object", "reconcile calls per object", "{:.2f}"),
    ("sync_s", "cache: start to synced (s)", "{:.2f}"),
    ("all_handled_s", "cache: start to every object reconciled (s)", "{:.2f}"),
    ("rss_base", "cache: RSS, 1 object (MiB)", "{:.1f}"),
    ("rss_full", "cache: RSS, all objects (MiB)", "{:.1f}"),
    ("kib_per_object", "cache: RSS per object (KiB)", "{:.2f}"),
]


MEMORY: list[tuple[str, str, str]] = [
    # (key, label, format) of the memory figures, shown as median [min, max]
    ("rss_base", "idle RSS, 1 object (MiB)", "{:.1f}"),
    ("kib_per_object", "RSS per cached object (KiB)", "{:.2f}"),
]


def headline(results: dict[str, dict[str, float] | None], names: list[str],
             keys: list[tuple[str, str, str]] = HEADLINE) -> str:
    """One line per contender: each figure of ``keys`` as ``median [min, max]``."""
    width = max(len(n) for n in names) + 2
    cols = [max(len(label), 24) + 2 for _, label, _ in keys]
    lines = ["".ljust(width) + "".join(label.rjust(w) for (_, label, _), w
                                       in zip(keys, cols, strict=True))]
    for name in names:
        r = results.get(name)
        cells = []
        for (key, _, fmt), w in zip(keys, cols, strict=True):
            if r is None or key not in r:
                cells.append("-".rjust(w))
                continue
            lo, hi = fmt.format(r[f"{key}_min"]), fmt.format(r[f"{key}_max"])
            cells.append(f"{fmt.format(r[key])} [{lo}, {hi}]".rjust(w))
        lines.append(name.ljust(width) + "".join(cells))
    return "\n".join(lines)


def table(results: dict[str, dict[str, float] | None], names: list[str]) -> str:
    width = max(len(label) for _, label, _ in ROWS) + 2
    cols = [max(10, len(n) + 2) for n in names]
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


async def run(s: Sizes, wanted: list[str], ceiling_writers: tuple[int, ...] = ()) -> int:
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    scale_note = ""
    # The API server's own ceiling for the cold start with writes rides along with the Go side.
    extra = [CEILING] if "controller-runtime" in wanted and not s.only_cache else []
    writers = ceiling_writers or (s.workers,)
    contenders, missing = available([*wanted, *extra], writers)
    for name, why in missing.items():
        print(f"skipping {name}: {why}", flush=True)
    logs = Path(tempfile.mkdtemp(prefix="kuar-bench-controller-"))
    results: dict[str, dict[str, float] | None] = {}
    with ControlPlane() as plane:
        client = Client(await load_config(plane.kubeconfig))
        try:
            await install_crd(client)
            await create_namespace(client, CACHE_NS)
            await create_namespace(client, IDLE_NS)
            await populate(client, IDLE_NS, 1)
            full, bare = await populate(client, CACHE_NS, s.cached)
            print(f"control plane up; {s.cached} objects in namespace {CACHE_NS!r} of {full} "
                  f"bytes of JSON each as served ({bare} without managedFields, which every "
                  f"cache here drops); {time.monotonic() - started:.1f} s", flush=True)
            if s.scale:
                await create_namespace(client, SCALE_NS)
                t0 = time.monotonic()
                await populate(client, SCALE_NS, s.scale)
                made = time.monotonic() - t0
                scale_note = (f"{s.scale} objects created in {made:.0f} s "
                              f"({s.scale / made:.0f}/s through the local control plane)")
                print(f"scale row: {scale_note}", flush=True)
            results = await measure(contenders, plane.kubeconfig, client, s, logs)
        finally:
            await client.close()
    failed = any(results.get(c.name) is None for c in contenders)
    if failed:
        print(f"controller logs kept in {logs}")
    else:
        shutil.rmtree(logs, ignore_errors=True)

    names = [n for n in ALL if n in wanted]
    print()
    if s.only_cache:
        print("--only-cache: idle RSS and cache phases only (no bursts, steady load or writes)")
    print(f"bench/controller: {s.workers} workers (kuar, controller-runtime; {BURST_KUAR}: "
          f"{BURST_WORKERS}); {s.runs} runs of "
          f"each cold start ({s.cold_writes} objects with writes, {s.cached} without), "
          f"alternated; {s.rounds} bursts of {s.burst} objects ({s.create_concurrency} creates "
          f"in flight); steady {s.rate:.0f}/s for {s.steady_seconds:.0f} s in {s.slices} "
          f"turns; load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    print("cold start (median [min, max] of the runs):")
    print(headline(results, names))
    ceiling = math.nan
    for w in writers if extra else ():
        r_c = results.get(ceiling_name(w)) or {}
        rate = r_c.get("cold_write_rate", math.nan)
        ceiling = rate if math.isnan(ceiling) else max(ceiling, rate)
        spread = (f"{rate:.0f} [{r_c.get('cold_write_rate_min', math.nan):.0f}, "
                  f"{r_c.get('cold_write_rate_max', math.nan):.0f}]")
        print(f"API server ceiling, the same writes by {w} client-go writers with no "
              f"controller (one list, no cache, queue or watch): {spread} objects/s")
    if not s.only_cache:
        print()
        print(f"latency (median [min, max] of the turns: {s.rounds} bursts, {s.slices} steady "
              "slices):")
        print(headline(results, names, LATENCY))
    print()
    print("memory (median [min, max] of the runs):")
    print(headline(results, names, MEMORY))
    print()
    print("secondary (medians):")
    print(table(results, names))
    if s.scale:
        print()
        print(f"scale: one fresh process over {scale_note}")
        print(f"{'':<20}{'synced (s)':>12}{'all reconciled (s)':>20}{'RSS (MiB)':>11}")
        for name in (n for n in names if n in SCALED):
            r = results.get(name)
            if r is None or "scale_rss" not in r:
                print(f"{name:<20}{'-':>12}{'-':>20}{'-':>11}")
                continue
            print(f"{name:<20}{r['scale_sync_s']:>12.2f}{r['scale_all_s']:>20.2f}"
                  f"{r['scale_rss']:>11.1f}")
    kuar_tput = get(results, "kuar", "throughput")
    tput_r = kuar_tput / get(results, "controller-runtime", "throughput")
    tput_k = kuar_tput / get(results, "kopf", "throughput")
    p = get(results, "kuar", "e2r_p99")
    m = get(results, "kuar", "kib_per_object")
    kuar_cold = get(results, "kuar", "cold_write_rate")
    cold_r = kuar_cold / get(results, "controller-runtime", "cold_write_rate")
    cold_k = kuar_cold / get(results, "kopf", "cold_write_rate")
    cpu = get(results, "kuar", "cold_write_cpu")
    cpu_r = cpu / get(results, "controller-runtime", "cold_write_cpu")
    p50_k = get(results, "kuar", "burst_p50") / get(results, "kopf", "burst_p50")
    p50_kb = get(results, BURST_KUAR, "burst_p50") / get(results, "kopf", "burst_p50")
    rss = get(results, "kuar", "rss_base")
    print()
    print("kopf keeps no object cache: its 'synced' is when it has handled every listed object,")
    print("and its RSS per object is what handling them left behind (at its defaults, one idle")
    print("worker per object for 5 s).")
    if s.cached < 10_000:
        print(f"RSS per object over only {s.cached} objects carries the one-off costs of a first "
              "list (decision 0008); the target is for 10,000.")
    kopf_cold = get(results, "kopf", "cold_write_rate")
    if not math.isnan(ceiling) and not math.isnan(kopf_cold):
        print(f"3x kopf's cold start with writes is {3 * kopf_cold:.0f} objects/s; this machine's "
              f"highest API server ceiling row is {ceiling:.0f} ({ceiling / kopf_cold:.2f}x kopf)")
    for label, value, target, ok in (
        ("cold start with writes vs controller-runtime", cold_r, ">= 1.0x", cold_r >= 1.0),
        ("cold start with writes vs kopf", cold_k, ">= 3x", cold_k >= 3),
        ("CPU per object vs controller-runtime", cpu_r, "<= 0.8x", cpu_r <= 0.8),
        ("burst create-to-status p50 vs kopf", p50_k, "<= 1.0x", p50_k <= 1.0),
        (f"same, {BURST_KUAR} vs kopf", p50_kb, "<= 1.0x", p50_kb <= 1.0),
        ("steady event-to-reconcile p99 (ms)", p, "<= 50", p <= 50),
        ("RSS per cached object (KiB)", m, "<= 2.5", m <= 2.5),
        ("RSS with 1 object (MiB)", rss, "<= 50", rss <= 50),
    ):
        verdict = "n/a" if math.isnan(value) else ("met" if ok else "MISSED")
        print(f"target {label}: {value:.2f} (target {target}): {verdict}")
    print(f"total {time.monotonic() - started:.1f} s")
    print(f"ratio_vs_controller_runtime={tput_r:.2f} ratio_vs_kopf={tput_k:.2f} p99_ms={p:.1f} "
          f"kib_per_object={m:.2f} cold_ratio_vs_controller_runtime={cold_r:.2f} "
          f"cold_ratio_vs_kopf={cold_k:.2f} cpu_ms_per_object={cpu:.3f} "
          f"ceiling_ratio_vs_kopf={ceiling / kopf_cold:.2f} "
          f"burst_p50_ratio_vs_kopf={p50_k:.2f} "
          f"burst{BURST_WORKERS}_p50_ratio_vs_kopf={p50_kb:.2f}")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (within 60 s)")
    parser.add_argument("--contenders", default=",".join(ALL),
                        help="comma-separated subset of: " + ", ".join(ALL))
    parser.add_argument("--workers", type=int, default=10,
                        help="concurrent reconciles (kuar, controller-runtime, kopf-limit10; "
                             f"not {BURST_KUAR})")
    parser.add_argument("--burst", type=int, help="objects created at once, per round")
    parser.add_argument("--rounds", type=int, default=3, help="bursts per contender")
    parser.add_argument("--rate", type=float, default=100.0, help="steady creates per second")
    parser.add_argument("--steady-seconds", type=float, help="length of the steady load")
    parser.add_argument("--slices", type=int, help="turns the steady load is cut into")
    parser.add_argument("--cached", type=int,
                        help="existing, reconciled objects for the cold start without writes")
    parser.add_argument("--cold-writes", type=int,
                        help="existing objects needing a write, for the cold start with writes")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of each cold start and of the one-object idle process")
    parser.add_argument("--only-cache", action="store_true",
                        help="only the idle RSS and cache phases (no bursts, steady load or "
                             "writes)")
    parser.add_argument("--scale", type=int, default=0,
                        help="also a scale row: one fresh kuar and controller-runtime process "
                             "over this many objects (e.g. 100000; not with --quick)")
    parser.add_argument("--create-concurrency", type=int, default=64,
                        help="create requests in flight during the burst")
    parser.add_argument("--ceiling-writers", default="",
                        help="comma-separated client-go writer counts of the API server ceiling "
                             "rows (default: --workers)")
    parser.add_argument("--settle", type=float,
                        help="seconds between turns (default 0.3 with --quick, else 1)")
    args = parser.parse_args()
    wanted = [n.strip() for n in args.contenders.split(",") if n.strip()]
    try:
        writers = tuple(int(w) for w in args.ceiling_writers.split(",") if w.strip())
    except ValueError:
        parser.error(f"--ceiling-writers: not a list of numbers: {args.ceiling_writers!r}")
    if any(w < 1 for w in writers):
        parser.error("--ceiling-writers: every count must be at least 1")
    unknown = set(wanted) - set(ALL)
    if unknown:
        parser.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    s = Sizes(
        burst=args.burst or (250 if args.quick else 2000),
        rounds=args.rounds,
        rate=args.rate,
        steady_seconds=args.steady_seconds or (5.0 if args.quick else 60.0),
        slices=args.slices or (2 if args.quick else 6),
        cached=args.cached or (2000 if args.quick else 10_000),
        cold_writes=args.cold_writes or (500 if args.quick else 3000),
        runs=args.runs,
        scale=0 if args.quick else args.scale,
        workers=args.workers,
        create_concurrency=args.create_concurrency,
        settle=args.settle if args.settle is not None else (0.3 if args.quick else 1.0),
        only_cache=args.only_cache,
    )
    try:
        import uvloop  # the driver's own overhead is the same for every contender; keep it low
    except ImportError:
        raise SystemExit(asyncio.run(run(s, wanted, writers))) from None
    raise SystemExit(uvloop.run(run(s, wanted, writers)))


if __name__ == "__main__":
    main()
