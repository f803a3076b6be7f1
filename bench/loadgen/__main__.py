"""kuar-loadgen against nginx on loopback: requests/s on one core versus wrk, hey and locust,
and rate accuracy at 2,000 requests/s.

Run: ``.venv/bin/python -m bench.loadgen [--quick] [--locust PATH]``

- nginx (Debian package) serves a 61-byte file on 127.0.0.1, started here with a temporary
  prefix and stopped by its pid; it runs on ``--server-core`` (0), every tool on
  ``--client-core`` (1) through ``taskset``.
- Throughput: wrk, hey (``GOMAXPROCS=1``) and locust (FastHttpUser, no wait) run closed loop with
  64 connections/users; kuar-loadgen is open loop, so its maximum is found by raising the rate
  1.5x per step from 10,000/s until the achieved rate falls 3 % short twice at one rate,
  counting only responses completed inside each step's window. Full mode runs two rounds and
  keeps each tool's best (the machine is shared; the best is the least disturbed).
- "per CPU-s" divides each tool's requests by the CPU time of its process (start-up
  included): the tool's cost per request, unaffected by other work on a shared machine. When
  nginx is the bottleneck a tool idles and this figure exceeds its wall-clock rate. The
  wall-clock requests/s is the headline (and the last line), as asked.
- Rate accuracy: kuar-loadgen at 2,000/s for 30 s (10 s with ``--quick``): the achieved rate's
  error, the worst second's error, and the scheduling lateness p99 (how late requests were
  written compared with their due time).
- A missing tool is skipped with the command that installs it; nothing is installed here.

- Stage accuracy and multi-process scaling (1 vs 2 processes): see :mod:`bench.loadgen.loadmodel`.

The last line is ``rps_per_core=N ratio_vs_locust=L ratio_vs_wrk=W rate_error_pct=E
stage_error_pct=S rps_1p=A rps_2p=B`` (``nan`` for a skipped tool). ``--quick`` takes under 60 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from bench.loadgen.loadmodel import START, max_rate, stage_accuracy
from bench.loadgen.nginx import nginx
from bench.loadgen.tools import (
    INSTALL,
    Measure,
    find_locust,
    hey_max,
    kuar_max,
    locust_max,
    run_kuar,
    wrk_max,
)
from kuar_loadgen.schedule import expected_per_second

RATE = 2000.0


def _fmt(x: float | None, spec: str = ",.0f") -> str:
    return "skipped" if x is None else format(x, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, under 60 s in all")
    parser.add_argument("--locust", help="path of the locust executable")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0))
    server_core: int | None = args.server_core
    client_core: int | None = args.client_core
    if shutil.which("taskset") is None or cores < 2:
        print("note: fewer than 2 cores or no taskset: tools are not pinned", file=sys.stderr)
        server_core = client_core = None
    if shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"):
        print(f"nginx is missing; install it: {INSTALL['nginx']}")
        print("rps_per_core=nan ratio_vs_locust=nan ratio_vs_wrk=nan rate_error_pct=nan")
        sys.exit(1)
    step = 2 if args.quick else 5
    other = 3 if args.quick else 10
    rate_seconds = 10 if args.quick else 30
    rounds = 1 if args.quick else 2
    locust = find_locust(args.locust)

    best: dict[str, Measure] = {}
    with nginx(server_core) as srv:
        for _ in range(rounds):
            for m in (kuar_max(srv.url, seconds=step, core=client_core,
                               max_runs=6 if args.quick else 12),
                      wrk_max(srv.url, seconds=other, core=client_core),
                      hey_max(srv.url, seconds=other, core=client_core),
                      locust_max(srv.url, seconds=other, core=client_core, binary=locust)):
                kept = best.get(m.tool)
                if kept is None or (m.rps or 0) > (kept.rps or 0):
                    best[m.tool] = m
        rate = run_kuar(srv.url, rps=RATE, seconds=rate_seconds, core=client_core,
                        connections=256, timeout=10.0)
        staged = stage_accuracy(srv.url, core=client_core, scale=0.67 if args.quick else 1.0)
        one = max_rate(srv.url, processes=1, seconds=step, max_runs=6 if args.quick else 10)
        two = max_rate(srv.url, processes=2, seconds=step, max_runs=6 if args.quick else 10)

    kuar = best["kuar-loadgen"].rps or 0.0
    print(f"\nThroughput on one core (nginx on core {server_core}, tools on core "
          f"{client_core}, {rounds} round(s), best kept)")
    print(f"{'tool':<14}{'requests/s':>12}{'kuar / tool':>13}{'per CPU-s':>11}  how")
    for name in ("kuar-loadgen", "wrk", "hey", "locust"):
        m = best[name]
        ratio = kuar / m.rps if m.rps else None
        print(f"{name:<14}{_fmt(m.rps):>12}{_fmt(ratio, '.2f'):>13}{_fmt(m.cpu_rps):>11}"
              f"  {m.note}")
    steps = ", ".join(f"{r:,.0f}->{a:,.0f}" for r, a in best["kuar-loadgen"].steps)
    print(f"kuar-loadgen steps (asked->achieved/s): {steps}")

    expected = expected_per_second(RATE, rate_seconds)
    seconds = rate["timeline"]["responses"][:rate_seconds]
    worst = max(abs(got - want) / want * 100 for got, want in zip(seconds, expected, strict=True))
    rate_error = abs(rate["achieved_rps"] - RATE) / RATE * 100
    print(f"\nRate accuracy: kuar-loadgen at {RATE:,.0f}/s for {rate_seconds} s, one core")
    print(f"{'requests':<28}{rate['requests']:>10,}")
    print(f"{'responses / errors':<28}{rate['responses']:>10,} / {rate['errors']:,}")
    print(f"{'achieved rate':<28}{rate['achieved_rps']:>10,.1f}  error {rate_error:.3f} %"
          f" ({'ok' if rate_error <= 1 else 'OVER'} 1 %)")
    print(f"{'worst second':<28}{worst:>10.2f} %  ({'ok' if worst <= 5 else 'OVER'} 5 %)")
    print(f"{'scheduling lateness p99':<28}{rate['lateness_ms']['p99']:>10.3f} ms"
          f"  (p50 {rate['lateness_ms']['p50']:.3f}, max {rate['lateness_ms']['max']:.3f})")
    print(f"{'latency p50 / p99 / max':<28}{rate['latency_ms']['p50']:>10.3f} / "
          f"{rate['latency_ms']['p99']:.3f} / {rate['latency_ms']['max']:.3f} ms")

    print(f"\nStage accuracy: ramp {START:,.0f} -> 3,000 -> 0 req/s, one process "
          "(requests written per second against the profile)")
    print(f"{'mean / worst second error':<28}{staged.mean_pct:>10.2f} / {staged.worst_pct:.2f} %")
    print(f"{'seconds (due->sent)':<28}"
          + ", ".join(f"{w}->{g}" for w, g in staged.seconds))
    print("\nMulti-process scaling: highest rate held, unpinned, both cores (nginx included)")
    print(f"{'--processes 1 / 2':<28}{one:>10,.0f} / {two:,.0f} req/s  "
          f"(x{two / one if one else float('nan'):.2f})")

    def ratio(tool: str) -> str:
        r = best[tool].rps
        return f"{kuar / r:.2f}" if r else "nan"

    print(f"rps_per_core={kuar:.0f} ratio_vs_locust={ratio('locust')} "
          f"ratio_vs_wrk={ratio('wrk')} rate_error_pct={rate_error:.3f} "
          f"stage_error_pct={staged.mean_pct:.2f} rps_1p={one:.0f} rps_2p={two:.0f}")


if __name__ == "__main__":
    main()
