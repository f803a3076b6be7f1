"""Controller runtime benchmark: kuar beside kopf and controller-runtime, in one run.

Run: ``.venv/bin/python -m bench.controller [--quick] [--contenders kuar,kopf,controller-runtime]``

On a private local control plane (etcd + kube-apiserver), each contender runs as its own
process with the same trivial reconcile (set ``status.observedGeneration`` with a merge patch
of the status subresource), the same worker concurrency and no client-side rate limiting;
only one contender is under load at a time, in turns (see ``phases.py``):

1. burst: N objects created at once (``--create-concurrency`` requests in flight), ``--rounds``
   times: time until the driver's watch has seen every status, objects/s, create-to-status
   p50/p99, and the controller's CPU time per object;
2. steady: creates at ``--rate``/s, open loop, for ``--steady-seconds`` in ``--slices`` turns:
   event-to-reconcile-start p50/p99 (the controller's wall-clock stamp at reconcile start
   minus the time the driver's create request completed); for reference, when the driver's
   own watch saw the object (the API server's share of that delay) and the reconcile start
   minus that moment (the controller's own share);
3. cache: a fresh process over M existing, already reconciled objects: time from the
   controller's start to a synced cache and to every object reconciled (no-op reconciles, so
   no API write in the way), and (RSS then - RSS of the phase 1-2 process with one object,
   before any load) / M.

The machine's load average is printed with the table: other work on a shared machine moves
every figure (see docs/decisions/0008-controller-benchmark.md).

kopf settings and the reasons for them are in ``kopf_side.py``; the controller-runtime program
is ``go/main.go`` (built once into ``~/.cache/kuar/bench/controller/<hash>/``). A missing kopf
or a failed Go build drops that column (its ratio is ``nan``). Full mode uses the issue's
numbers (2 x 2,000 / 100/s for 60 s / 10,000); ``--quick`` uses 2 x 250 / 100/s for 5 s /
2,000 and is meant to finish within 60 s on an idle 2-core machine (the Go program already
built).
The last line is ``ratio_vs_controller_runtime=R ratio_vs_kopf=K p99_ms=P kib_per_object=M``
(kuar's throughput over theirs, kuar's steady p99, kuar's KiB per cached object).
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

from bench.controller.contenders import available
from bench.controller.phases import CACHE_NS, Sizes, measure
from bench.controller.workload import create_namespace, install_crd, populate
from kuar.client import Client, load_config
from kuar.testing import ControlPlane

ALL = ("kuar", "kopf", "controller-runtime")


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


async def run(s: Sizes, wanted: list[str]) -> int:
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    contenders, missing = available(wanted)
    for name, why in missing.items():
        print(f"skipping {name}: {why}", flush=True)
    logs = Path(tempfile.mkdtemp(prefix="kuar-bench-controller-"))
    results: dict[str, dict[str, float] | None] = {}
    with ControlPlane() as plane:
        client = Client(await load_config(plane.kubeconfig))
        try:
            await install_crd(client)
            await create_namespace(client, CACHE_NS)
            full, bare = await populate(client, CACHE_NS, s.cached)
            print(f"control plane up; {s.cached} objects in namespace {CACHE_NS!r} of {full} "
                  f"bytes of JSON each as served ({bare} without managedFields, which every "
                  f"cache here drops); {time.monotonic() - started:.1f} s", flush=True)
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
    print(f"bench/controller: {s.workers} workers each; {s.rounds} bursts of {s.burst} objects "
          f"({s.create_concurrency} creates in flight); steady {s.rate:.0f}/s for "
          f"{s.steady_seconds:.0f} s in {s.slices} turns; cache {s.cached} objects; "
          f"load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    print(table(results, names))
    kuar_tput = get(results, "kuar", "throughput")
    r = kuar_tput / get(results, "controller-runtime", "throughput")
    k = kuar_tput / get(results, "kopf", "throughput")
    p = get(results, "kuar", "e2r_p99")
    m = get(results, "kuar", "kib_per_object")
    print()
    print("kopf keeps no object cache: its 'synced' is when it has handled every listed object,")
    print("and its RSS per object is what handling them left behind.")
    if s.cached < 10_000:
        print(f"RSS per object over only {s.cached} objects carries the one-off costs of a first "
              "list (decision 0008); the target is for 10,000.")
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
    parser.add_argument("--burst", type=int, help="objects created at once, per round")
    parser.add_argument("--rounds", type=int, default=2, help="bursts per contender")
    parser.add_argument("--rate", type=float, default=100.0, help="steady creates per second")
    parser.add_argument("--steady-seconds", type=float, help="length of the steady load")
    parser.add_argument("--slices", type=int, help="turns the steady load is cut into")
    parser.add_argument("--cached", type=int, help="existing objects for the cache phase")
    parser.add_argument("--create-concurrency", type=int, default=64,
                        help="create requests in flight during the burst")
    parser.add_argument("--settle", type=float,
                        help="seconds between turns (default 0.3 with --quick, else 1)")
    args = parser.parse_args()
    wanted = [n.strip() for n in args.contenders.split(",") if n.strip()]
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
        workers=args.workers,
        create_concurrency=args.create_concurrency,
        settle=args.settle if args.settle is not None else (0.3 if args.quick else 1.0),
    )
    try:
        import uvloop  # the driver's own overhead is the same for every contender; keep it low
    except ImportError:
        raise SystemExit(asyncio.run(run(s, wanted))) from None
    raise SystemExit(uvloop.run(run(s, wanted)))


if __name__ == "__main__":
    main()
