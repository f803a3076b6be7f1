"""HTTP transports to the real API server: client CPU per request, requests/s, import cost.

Place in the pipeline: a benchmark (not part of kuar). The numbers behind
docs/decisions/0024-client-transport.md.

Run: ``.venv/bin/python -m bench.transport [--runs 3] [--requests 3000] [--quick]``

Two loads against one local control plane (etcd + kube-apiserver over TLS with client
certificates): (a) status merge patches by 10 concurrent lanes, each on its own ``BenchLoad``
object (LoadTest-sized), and (b) GETs of one ConfigMap at concurrency 16. Each variant runs in
a fresh process (``bench.transport.child``), variants alternated A B C D / D C B A across runs;
medians with [min, max]. CPU is ``time.process_time()`` of the client process over the timed
requests, so it includes the event loop, TLS and JSON: the client's whole cost per request.
The last line is key=value.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.controller.workload import body, install_crd
from kuar.client import Client, load_config
from kuar.testing import ControlPlane

VARIANTS = ("aiohttp", "httpx-h1", "httpx-h2", "thin")
MODES = {"patch": 10, "get": 16}  # mode -> concurrency


async def _prepare(kubeconfig: str) -> None:
    async with Client(await load_config(kubeconfig)) as client:
        await install_crd(client)
        for i in range(MODES["patch"]):
            await client.request("POST", "/apis/bench.kuar.com/v1/namespaces/default/benchloads",
                                 body={**body(f"obj-{i}", i), "metadata": {
                                     **body(f"obj-{i}", i)["metadata"], "namespace": "default"}})
        await client.request("POST", "/api/v1/namespaces/default/configmaps", body={
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench"},
            "data": {f"key{i}": "value" * 10 for i in range(10)}})


def _spread(values: list[float], fmt: str) -> str:
    return (f"{statistics.median(values):{fmt}} "
            f"[{min(values):{fmt}}, {max(values):{fmt}}]")


def main() -> None:
    """Start a control plane, run every variant and mode alternated, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--quick", action="store_true",
                        help="smoke: 1 run of 64 requests, 2 warm-up requests per lane, "
                        "every child at once")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    requests, runs, warm = (64, 1, 2) if args.quick else (args.requests, args.runs, 20)
    load_before = os.getloadavg()
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with ControlPlane() as plane:
        kubeconfig = str(plane.kubeconfig)
        asyncio.run(_prepare(kubeconfig))
        jobs = [(variant, mode) for run in range(runs)
                for variant in (variants if run % 2 == 0 else variants[::-1]) for mode in MODES]

        def child(job: tuple[str, str]) -> dict[str, Any]:
            variant, mode = job
            out = subprocess.run(
                [sys.executable, "-m", "bench.transport.child", variant,
                 "--kubeconfig", kubeconfig, "--mode", mode, "--requests", str(requests),
                 "--concurrency", str(MODES[mode]), "--warm", str(warm)],
                capture_output=True, text=True, check=True, timeout=900,
            ).stdout
            return dict(json.loads(out))

        # --quick is a smoke test: its children run at once (their figures mean nothing)
        with ThreadPoolExecutor(len(jobs) if args.quick else 1) as pool:
            for (variant, mode), row in zip(jobs, pool.map(child, jobs), strict=True):
                results.setdefault((variant, mode), []).append(row)
    load_after = os.getloadavg()
    print(f"{requests} requests per run; patch: status merge patches by {MODES['patch']} lanes; "
          f"get: one ConfigMap at concurrency {MODES['get']}; median [min, max] of {runs} runs; "
          f"load average {load_before[0]:.1f} -> {load_after[0]:.1f}")
    print(f"{'variant':<9} {'mode':<5} {'CPU ms/request':>22} {'requests/s':>22} "
          f"{'import ms':>9} {'import MiB':>10} {'peak RSS MiB':>12}")
    med: dict[tuple[str, str], float] = {}
    for (variant, mode), rows in results.items():
        cpu = [r["cpu_ms_per_request"] for r in rows]
        rps = [r["requests_per_s"] for r in rows]
        med[(variant, mode)] = statistics.median(cpu)
        print(f"{variant:<9} {mode:<5} {_spread(cpu, '.3f'):>22} {_spread(rps, '.0f'):>22} "
              f"{statistics.median(r['import_ms'] for r in rows):>9.1f} "
              f"{statistics.median(r['import_mib'] for r in rows):>10.1f} "
              f"{statistics.median(r['peak_rss_mib'] for r in rows):>12.1f}")
    keys = [f"{v.replace('-', '_')}_{m}_cpu_ms={med[(v, m)]:.3f}"
            for v in variants for m in MODES if (v, m) in med]
    if ("thin", "patch") in med and ("aiohttp", "patch") in med:
        ratio = med[("thin", "patch")] / med[("aiohttp", "patch")]
        keys.append(f"thin_vs_aiohttp_patch_cpu={ratio:.2f}")
    print(" ".join([*keys, f"load_avg={load_after[0]:.1f}"]))


if __name__ == "__main__":
    main()
