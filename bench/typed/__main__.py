"""Typed resources: codec speed against plain dicts, and listing many LoadTests.

Run: ``.venv/bin/python -m bench.typed [--seconds 1] [--objects 10000] [--skip-list]``

- codec: objects/s for decoding and encoding one LoadTest with status and managedFields
  (no server), typed vs plain dicts.
- list: starts the local control plane, installs the LoadTest CRD, creates ``--objects``
  LoadTests (32 concurrent creates), then lists them in a fresh process per variant and
  reports wall time and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

from bench.typed import codec
from bench.typed.listing import VARIANTS
from kuar.client import Api, Client, apply_manifests, load_config
from kuar.resources import ObjectMeta, crds_for, find_resources
from kuar.testing import ControlPlane, ControlPlaneSettings
from kuar_loadtest.api.v2 import Load, LoadTest, LoadTestSpec, Target


async def _seed(kubeconfig: str, namespace: str, count: int) -> float:
    async with Client(await load_config(kubeconfig)) as client:
        await apply_manifests(client, crds_for(find_resources("kuar_loadtest.api")))
        await client.request("POST", "/api/v1/namespaces", body={
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        api = Api(client, LoadTest, namespace=namespace)
        gate = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with gate:
                await api.create(LoadTest(
                    metadata=ObjectMeta(name=f"lt-{i:05d}", labels={"bench": "list"}),
                    spec=LoadTestSpec(  # v2, the stored version: no conversion webhook here
                        target=Target(service=f"svc-{i % 50}", paths=["/a", "/b", "/c"]),
                        load=Load(requests_per_second=100 + i, workers=2))))

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--skip-list", action="store_true")
    args = parser.parse_args()

    print(f"{'operation':<13} {'variant':<60} {'objects/s':>11}")
    rates = []
    for op, variant, rate in codec.run(args.seconds):
        print(f"{op:<13} {variant:<60} {rate:>11,.0f}")
        rates.append(rate)
    if args.skip_list:
        print(f"codec_variants={len(rates)} slowest_codec_per_s={min(rates):.0f}")
        return
    listed: dict[str, float] = {}

    with ControlPlane(ControlPlaneSettings()) as plane:
        kubeconfig, namespace = str(plane.kubeconfig), "bench-list"
        seconds = asyncio.run(_seed(kubeconfig, namespace, args.objects))
        print(f"\ncreated {args.objects} LoadTests in {seconds:.1f} s "
              f"({args.objects / seconds:,.0f}/s through Api.create)")
        print(f"{'variant':<16} {'objects':>8} {'seconds':>8} {'objects/s':>10} "
              f"{'peak RSS MiB':>13}  what")
        for variant, what in VARIANTS.items():
            out = subprocess.run(
                [sys.executable, "-m", "bench.typed.listing", variant, "--kubeconfig",
                 kubeconfig, "--namespace", namespace],
                capture_output=True, text=True, check=True, timeout=600,
            ).stdout
            r = json.loads(out)
            print(f"{variant:<16} {r['count']:>8} {r['seconds']:>8.2f} "
                  f"{r['count'] / r['seconds']:>10,.0f} {r['peak_rss_mib']:>13.1f}  {what}")
            listed[variant] = r["count"] / r["seconds"]
    print(f"codec_variants={len(rates)} slowest_codec_per_s={min(rates):.0f} "
          f"typed_paged_per_s={listed['typed-paged']:.0f} "
          f"dict_paged_per_s={listed['dict-paged']:.0f}")


if __name__ == "__main__":
    main()
