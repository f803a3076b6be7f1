"""Measure the informer cache's memory per object (RSS) with 10,000 LoadTest-sized objects.

Not a test (it takes a minute): ``python tests/integration/runtime/measure_cache_memory.py``.
Starts a private control plane, creates N objects of a LoadTest-shaped CRD (spec + status
with one condition, labels, managedFields from the server), then, in a fresh process per
variant, syncs an informer over them and reports (RSS after sync - RSS before) / N.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
from typing import Any

from kuar.runtime import WatchConfig

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "loadtests.beta.kuar.com"},
    "spec": {
        "group": "beta.kuar.com",
        "scope": "Namespaced",
        "names": {"plural": "loadtests", "singular": "loadtest", "kind": "LoadTest",
                  "shortNames": ["lt"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {
                "type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        }],
    },
}


def loadtest(i: int, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "beta.kuar.com/v1", "kind": "LoadTest",
        "metadata": {"name": f"lt-{i:05d}", "namespace": ns,
                     "labels": {"app": "shop", "team": "perf"}},
        "spec": {"service": "my-service", "scheme": "https", "requestsPerSecond": 1000,
                 "paths": ["/index.html", "/login.html", "/shares/my-shares/"]},
        "status": {"observedGeneration": 1, "phase": "Running", "conditions": [{
            "type": "Ready", "status": "True", "reason": "Running",
            "message": "all workers running", "lastTransitionTime": "2026-01-01T00:00:00Z",
            "observedGeneration": 1}]},
    }


def rss() -> int:
    with open("/proc/self/statm") as f:
        import os
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def measure(kubeconfig: str, ns: str, compact: bool, count: int) -> dict[str, Any]:
    from kuar.client import Client, ResourceInfo, load_config
    from kuar.runtime import InformerCache, WatcherSettings

    lt = ResourceInfo("beta.kuar.com", "v1", "LoadTest", "loadtests", True)
    client = Client(await load_config(kubeconfig))
    await client.request("GET", lt.path(ns), params={"limit": 1})  # warm up imports and TLS
    gc.collect()
    before = rss()
    cache = InformerCache(client, settings=WatcherSettings(compact=compact))
    informer = cache.informer(lt, WatchConfig(namespace=ns))
    started = time.perf_counter()
    async with cache:
        await informer.wait_until_synced(120)
        elapsed = time.perf_counter() - started
        assert len(informer.store) == count, len(informer.store)
        gc.collect()
        after = rss()
    await client.close()
    return {"compact": compact, "objects": count, "sync_s": round(elapsed, 2),
            "rss_per_object_bytes": round((after - before) / count)}


async def populate(kubeconfig: str, ns: str, count: int) -> None:
    from kuar.client import Client, load_config, wait_crd_established

    client = Client(await load_config(kubeconfig))
    await client.request("POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    await client.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                         body=CRD)
    await wait_crd_established(client, "loadtests.beta.kuar.com")
    await asyncio.sleep(2)  # the new resource's storage initialises
    sem = asyncio.Semaphore(32)
    lt_path = f"/apis/beta.kuar.com/v1/namespaces/{ns}/loadtests"

    async def one(i: int) -> None:
        async with sem:
            for _ in range(50):
                try:
                    await client.request("POST", lt_path, body=loadtest(i, ns))
                    return
                except Exception:
                    await asyncio.sleep(0.2)
            raise RuntimeError(f"could not create object {i}")

    await asyncio.gather(*(one(i) for i in range(count)))
    sample = await client.request("GET", f"{lt_path}/lt-00000")
    print(f"one object as served: {len(json.dumps(sample))} bytes of JSON "
          f"({len(json.dumps(sample.get('metadata', {}).get('managedFields')))} in managedFields)")
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--measure", help="internal: kubeconfig to measure against")
    parser.add_argument("--compact", type=int, default=1)
    args = parser.parse_args()
    ns = "memory"
    if args.measure:
        print(json.dumps(asyncio.run(measure(args.measure, ns, bool(args.compact), args.count))))
        return
    from kuar.testing import ControlPlane

    with ControlPlane() as cp:
        asyncio.run(populate(str(cp.kubeconfig), ns, args.count))
        rows = []
        for compact in (1, 0):
            out = subprocess.run(
                [sys.executable, __file__, "--measure", str(cp.kubeconfig), "--compact",
                 str(compact), "--count", str(args.count)],
                capture_output=True, text=True, check=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'compact (interned)':>20} {'objects':>8} {'sync s':>7} {'RSS/object':>11}")
    for row in rows:
        print(f"{row['compact']!s:>20} {row['objects']:>8} {row['sync_s']:>7} "
              f"{row['rss_per_object_bytes']:>9} B")


if __name__ == "__main__":
    main()
