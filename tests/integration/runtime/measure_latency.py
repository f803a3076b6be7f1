"""Measure event-to-reconcile latency and burst throughput of a no-op controller.

Not a test, and not the issue's benchmark (that compares with controller-runtime in bench/):
a quick look at kuar.runtime's own overhead on the real control plane.
``python tests/integration/runtime/measure_latency.py [--paced 500] [--burst 2000]``.

Latency is from just before the create request is sent to the start of the first reconcile
of that object, so it includes the API server's create and watch delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from kuar.client import Client, ResourceInfo, load_config
from kuar.runtime import ControllerSettings, InformerCache, Request, WatchConfig, controller_for
from kuar.testing import ControlPlane

CM = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)


async def run(plane: ControlPlane, paced: int, rate: float, burst: int, workers: int) -> None:
    controller_client = Client(await load_config(plane.kubeconfig))
    creator = Client(await load_config(plane.kubeconfig))
    await creator.request("POST", "/api/v1/namespaces", body={"metadata": {"name": "perf"}})
    sent: dict[str, float] = {}
    first: dict[str, float] = {}

    async def reconcile(req: Request) -> None:
        first.setdefault(req.name, time.perf_counter())

    cache = InformerCache(controller_client)
    controller = (controller_for(CM, WatchConfig(namespace="perf"), cache=cache)
                  .with_settings(ControllerSettings(max_concurrent_reconciles=workers))
                  .build(reconcile))
    async with cache:
        task = asyncio.ensure_future(controller.run())
        await cache.wait_until_synced(30)
        pending = []
        start = time.perf_counter()
        for i in range(paced):
            name = f"paced-{i}"
            # keep the schedule open-loop: request i is due at start + i / rate
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            sent[name] = time.perf_counter()
            pending.append(asyncio.ensure_future(creator.request(
                "POST", CM.path("perf"), body={"metadata": {"name": name}})))
        await asyncio.gather(*pending)
        while len(first) < paced:
            await asyncio.sleep(0.01)
        lat = sorted(first[n] - sent[n] for n in sent)
        sem = asyncio.Semaphore(64)

        async def create(i: int) -> None:
            async with sem:
                await creator.request("POST", CM.path("perf"),
                                      body={"metadata": {"name": f"burst-{i}"}})

        t0 = time.perf_counter()
        await asyncio.gather(*(create(i) for i in range(burst)))
        created = time.perf_counter() - t0
        while len(first) < paced + burst:
            await asyncio.sleep(0.005)
        total = time.perf_counter() - t0
        controller.stop()
        await task
    await controller_client.close()
    await creator.close()
    print(f"paced {paced} creates at {rate:.0f}/s: event-to-reconcile p50 "
          f"{lat[len(lat) // 2] * 1e3:.1f} ms, p99 {lat[int(len(lat) * 0.99)] * 1e3:.1f} ms, "
          f"max {lat[-1] * 1e3:.1f} ms")
    print(f"burst {burst} creates (64 in flight): created in {created:.2f} s, all reconciled "
          f"{total:.2f} s after the first create (no-op reconcile, {workers} workers)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--paced", type=int, default=500)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=5)
    args = parser.parse_args()
    with ControlPlane() as plane:
        asyncio.run(run(plane, args.paced, args.rate, args.burst, args.workers))


if __name__ == "__main__":
    main()
