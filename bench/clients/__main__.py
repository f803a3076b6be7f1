"""Client libraries against the real API server: import time, GET latency and rate, memory.

Run: ``.venv/bin/python -m bench.clients [--alt-python /tmp/altvenv/bin/python]
[--requests 2000] [--concurrency 16] [--rounds 3]``

kuar and kubernetes_asyncio's generated client run with this venv; lightkube and kr8s (both
on httpx) run with ``--alt-python`` (a separate venv where they are installed), or with this
venv when the ``bench`` extra installed them here (``make bench-tools``). Each client runs in
a fresh process per round, rounds interleaved across clients; the table shows medians. The
numbers behind docs/decisions/0002-client-and-transport.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path

from kuar.client import Client, load_config
from kuar.testing import ControlPlane, ControlPlaneSettings

CHILD = str(Path(__file__).with_name("child.py"))


async def _prepare(kubeconfig: str) -> None:
    async with Client(await load_config(kubeconfig)) as client:
        await client.request("POST", "/api/v1/namespaces/default/configmaps", body={
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench"},
            "data": {f"key{i}": "value" * 10 for i in range(10)}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alt-python", default=None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs = [("kuar", sys.executable), ("kuar-typed", sys.executable),
            ("kubernetes_asyncio", sys.executable)]
    if args.alt_python:
        runs += [("lightkube", args.alt_python), ("kr8s", args.alt_python),
                 ("kubernetes_asyncio", args.alt_python)]
    elif all(importlib.util.find_spec(m) for m in ("lightkube", "kr8s")):
        runs += [("lightkube", sys.executable), ("kr8s", sys.executable)]
    else:
        print("lightkube and kr8s are not installed (make bench-tools, or --alt-python): "
              "their rows are missing")
    with ControlPlane(ControlPlaneSettings()) as plane:
        kubeconfig = str(plane.kubeconfig)
        asyncio.run(_prepare(kubeconfig))
        print(f"GET one ConfigMap; {args.requests} requests at concurrency {args.concurrency}; "
              f"median of {args.rounds} rounds")
        print(f"{'client':<20} {'venv':<8} {'import ms':>9} {'p50 ms':>7} {'GET/s':>7} "
              f"{'peak RSS MiB':>12}")
        results: dict[tuple[str, str], list[dict[str, float]]] = {r: [] for r in runs}
        for _ in range(args.rounds):  # interleaved, so background load hits every client
            for name, python in runs:
                out = subprocess.run(
                    [python, CHILD, name, "--kubeconfig", kubeconfig, "--requests",
                     str(args.requests), "--concurrency", str(args.concurrency)],
                    capture_output=True, text=True, check=True, timeout=600,
                ).stdout
                results[(name, python)].append(json.loads(out))
        kuar: dict[str, float] = {}
        for (name, python), rounds in results.items():
            med = {k: statistics.median(r[k] for r in rounds)
                   for k in ("import_ms", "p50_ms", "rps", "peak_rss_mib")}
            venv = "main" if python == sys.executable else "alt"
            print(f"{name:<20} {venv:<8} {med['import_ms']:>9.0f} {med['p50_ms']:>7.2f} "
                  f"{med['rps']:>7.0f} {med['peak_rss_mib']:>12.1f}")
            if name == "kuar":
                kuar = med
        print(f"kuar_import_ms={kuar['import_ms']:.0f} kuar_p50_ms={kuar['p50_ms']:.2f} "
              f"kuar_get_per_s={kuar['rps']:.0f} kuar_peak_rss_mib={kuar['peak_rss_mib']:.1f}")

if __name__ == "__main__":
    main()
