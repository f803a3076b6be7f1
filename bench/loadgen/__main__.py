"""kuar-loadgen against nginx on loopback: requests/s on one core versus wrk, hey and locust,
and rate accuracy at 2,000 requests/s.

Run: ``.venv/bin/python -m bench.loadgen [--quick] [--runs N] [--seconds S] [--locust PATH]``

- nginx (Debian package) serves a 61-byte file on 127.0.0.1, started here with a temporary
  prefix and stopped by its pid; it runs on ``--server-core`` (0), every tool on
  ``--client-core`` (1) through ``taskset``.
- Throughput: wrk, hey (``GOMAXPROCS=1``) and locust (FastHttpUser, no wait) run closed loop
  with 64 connections/users. kuar-loadgen is open loop (it has no 'as fast as possible'
  mode), so its maximum is searched for first (rates rising 1.5x from 10,000/s until one
  falls 3 % short twice, then three bisection steps; responses counted inside each window),
  and then measured at that rate exactly like the others. The rate is searched again before
  each of its measured runs, starting from the last rate found (the search is not part of
  the figure): on a shared machine whose speed drifts over minutes, a rate found once
  overloads or idles later runs, while the closed-loop tools adapt. Past its capacity
  kuar-loadgen drops what it cannot send (a request that waited half its 1 s timeout for a
  connection; counted in its errors column), so an overloaded run, or a step of the search,
  still delivers its capacity instead of collapsing into timeouts. Every tool gets
  ``--runs`` runs of ``--seconds`` s, alternated A B C D / D C B A; the table shows the median
  with min and max, and the failed requests of all runs beside them.
- "per CPU-s" divides each tool's requests by the CPU time of its process (start-up
  included): the tool's cost per request, unaffected by other work on a shared machine. When
  nginx is the bottleneck a tool idles and this figure exceeds its wall-clock rate. The
  wall-clock requests/s is the headline (and the last line), as asked.
- Rate accuracy: kuar-loadgen at 2,000/s for 30 s (10 s with ``--quick``): the achieved rate's
  error, the worst second's error, the scheduling lateness p99 (how late requests were
  written compared with their due time), and the latency percentiles (failures listed
  beside them).
- A missing tool is skipped with the command that installs it (``make bench-tools``
  installs all of them).

- Stage accuracy and multi-process scaling (1 vs 2 processes): see :mod:`bench.loadgen.loadmodel`.

The last line is ``rps_per_core=N ratio_vs_locust=L ratio_vs_wrk=W rate_error_pct=E
stage_error_pct=S rps_1p=A rps_2p=B`` (medians; ``nan`` for a skipped tool). ``--quick`` takes
about a minute and a half.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from collections.abc import Callable

from bench.loadgen.loadmodel import START, max_rate, stage_accuracy
from bench.loadgen.nginx import nginx
from bench.loadgen.tools import (
    INSTALL,
    Measure,
    find_locust,
    hey_max,
    kuar_at,
    kuar_search,
    locust_max,
    run_kuar,
    wrk_max,
)
from kuar_loadgen.schedule import expected_per_second

RATE = 2000.0


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _fmt(x: float | None, spec: str = ",.0f") -> str:
    return "skipped" if x is None else format(x, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, under 60 s in all")
    parser.add_argument("--locust", help="path of the locust executable")
    parser.add_argument("--runs", type=int, help="alternated runs per tool (3; 2 with --quick)")
    parser.add_argument("--seconds", type=int, help="seconds per run (10; 3 with --quick)")
    parser.add_argument("--rate-seconds", type=int,
                        help="seconds of the 2,000/s accuracy run (30; 10 with --quick)")
    parser.add_argument("--search-steps", type=int, default=12,
                        help="most rising steps of kuar-loadgen's rate search")
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
    seconds = args.seconds or (3 if args.quick else 10)
    runs = args.runs or (2 if args.quick else 3)
    rate_seconds = args.rate_seconds or (10 if args.quick else 30)
    locust = find_locust(args.locust)

    samples: dict[str, list[Measure]] = {}
    with nginx(server_core) as srv:
        search = kuar_search(srv.url, seconds=min(seconds, 5), core=client_core,
                             max_runs=args.search_steps)
        assert search.rps is not None
        searched: list[float] = []

        def kuar_turn() -> Measure:
            # The rate is searched again in each turn, from the last one found (not part of the
            # figure): an open-loop rate found minutes earlier overloads a machine that has
            # slowed since, or idles on one that has sped up, while the closed-loop tools
            # adapt within each run.
            last = searched[-1] if searched else search.rps or 0.0
            turn = kuar_search(srv.url, seconds=min(seconds, 5), core=client_core,
                               start=last / 1.5, max_runs=args.search_steps)
            searched.append(turn.rps or last)
            return kuar_at(srv.url, rate=searched[-1], seconds=seconds, core=client_core)

        tools: dict[str, Callable[[], Measure]] = {
            "kuar-loadgen": kuar_turn,
            "wrk": lambda: wrk_max(srv.url, seconds=seconds, core=client_core),
            "hey": lambda: hey_max(srv.url, seconds=seconds, core=client_core),
            "locust": lambda: locust_max(srv.url, seconds=seconds, core=client_core,
                                         binary=locust),
        }
        names = list(tools)
        for r in range(runs):
            for name in names if r % 2 == 0 else names[::-1]:
                samples.setdefault(name, []).append(tools[name]())
        rate = run_kuar(srv.url, rps=RATE, seconds=rate_seconds, core=client_core,
                        connections=256, timeout=10.0)
        staged = stage_accuracy(srv.url, core=client_core, scale=0.67 if args.quick else 1.0)
        step = min(seconds, 5)
        one = max_rate(srv.url, processes=1, seconds=step, max_runs=6 if args.quick else 10)
        two = max_rate(srv.url, processes=2, seconds=step, max_runs=6 if args.quick else 10)

    medians = {name: _median([m.rps for m in ms]) for name, ms in samples.items()}
    kuar = medians["kuar-loadgen"] or 0.0
    print(f"\nThroughput on one core (nginx on core {server_core}, tools on core "
          f"{client_core}; {runs} alternated runs of {seconds} s each; median [min, max])")
    print(f"{'tool':<14}{'requests/s [min, max]':>30}{'kuar / tool':>13}{'per CPU-s':>11}"
          f"{'errors':>8}  how")
    for name in names:
        ms = samples[name]
        rps = [m.rps for m in ms if m.rps is not None]
        spread = (f"{medians[name]:,.0f} [{min(rps):,.0f}, {max(rps):,.0f}]"
                  if rps and medians[name] else "skipped")
        median = medians[name]
        ratio = kuar / median if median else None
        errors = [m.errors for m in ms if m.errors is not None]
        print(f"{name:<14}{spread:>30}{_fmt(ratio, '.2f'):>13}"
              f"{_fmt(_median([m.cpu_rps for m in ms])):>11}"
              f"{(str(sum(errors)) if errors else '-'):>8}  {ms[0].note}")
    steps = ", ".join(f"{r:,.0f}->{a:,.0f}" for r, a in search.steps)
    print(f"kuar-loadgen rate search (asked->achieved/s, {min(seconds, 5)} s each; not part "
          f"of its figure): {steps}; searched again before each measured run, from the last "
          f"rate found: measured at {', '.join(f'{r:,.0f}' for r in searched)}/s")

    expected = expected_per_second(RATE, rate_seconds)
    seconds = rate["timeline"]["responses"][:rate_seconds]
    worst = max(abs(got - want) / want * 100 for got, want in zip(seconds, expected, strict=True))
    rate_error = abs(rate["achieved_rps"] - RATE) / RATE * 100
    print(f"\nRate accuracy: kuar-loadgen at {RATE:,.0f}/s for {rate_seconds} s, one core")
    print(f"{'requests':<28}{rate['requests']:>10,}")
    print(f"{'responses / errors':<28}{rate['responses']:>10,} / {rate['errors']:,}")
    print(f"{'achieved rate':<28}{rate['achieved_rps']:>10,.1f}  error {rate_error:.3f} %"
          f" ({'ok' if rate_error <= 0.5 else 'OVER'} 0.5 %)")
    print(f"{'worst second':<28}{worst:>10.2f} %  ({'ok' if worst <= 5 else 'OVER'} 5 %)")
    print(f"{'scheduling lateness p99':<28}{rate['lateness_ms']['p99']:>10.3f} ms"
          f"  (p50 {rate['lateness_ms']['p50']:.3f}, max {rate['lateness_ms']['max']:.3f})")
    print(f"{'latency p50 / p99 / max':<28}{rate['latency_ms']['p50']:>10.3f} / "
          f"{rate['latency_ms']['p99']:.3f} / {rate['latency_ms']['max']:.3f} ms"
          f"  (successful responses; {rate['errors']:,} failed)")

    print(f"\nStage accuracy: ramp {START:,.0f} -> 3,000 -> 0 req/s, one process "
          "(requests written per second against the profile)")
    print(f"{'mean / worst second error':<28}{staged.mean_pct:>10.2f} / {staged.worst_pct:.2f} %")
    print(f"{'seconds (due->sent)':<28}"
          + ", ".join(f"{w}->{g}" for w, g in staged.seconds))
    print("\nMulti-process scaling: highest rate held, unpinned, both cores (nginx included)")
    print(f"{'--processes 1 / 2':<28}{one:>10,.0f} / {two:,.0f} req/s  "
          f"(x{two / one if one else float('nan'):.2f})")

    def over(tool: str) -> str:
        r = medians[tool]
        return f"{kuar / r:.2f}" if r else "nan"

    print(f"rps_per_core={kuar:.0f} ratio_vs_locust={over('locust')} "
          f"ratio_vs_wrk={over('wrk')} rate_error_pct={rate_error:.3f} "
          f"stage_error_pct={staged.mean_pct:.2f} rps_1p={one:.0f} rps_2p={two:.0f}")


if __name__ == "__main__":
    main()
