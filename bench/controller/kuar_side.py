"""The kuar side of bench/controller: a Manager running one controller over BenchLoads.

Run by ``bench.controller`` as ``python -m bench.controller.kuar_side --kubeconfig K
--namespace NS --workers W``. The reconcile reads the object from the informer's store and,
when ``status.observedGeneration`` lags ``metadata.generation``, merge-patches the status
subresource. Prints the protocol of :mod:`bench.controller.contenders` on stdout.
kuar has no client-side rate limiter; the workqueue's overall retry bucket is raised anyway,
as on the controller-runtime side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from typing import Any

from bench.controller.workload import RESOURCE
from kuar.client import Client, NotFound, load_config
from kuar.manager import Manager, ManagerSettings
from kuar.runtime import (
    ControllerSettings,
    RateLimiterSettings,
    Request,
    WatchConfig,
    controller_for,
    patch_status,
)


class _Synced:
    """Prints ``SYNCED`` once the primary informer's store has its first full list."""

    needs_leader_election = False

    def __init__(self, informer: Any) -> None:
        self.informer = informer

    async def run(self) -> None:
        await self.informer.wait_until_synced()
        print(f"SYNCED {time.time_ns()}", flush=True)
        await asyncio.Event().wait()


async def flush_every(seconds: float) -> None:
    """Flush stdout now and then: one pipe write per reconcile would wake the driver each time."""
    while True:
        await asyncio.sleep(seconds)
        sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    out = sys.stdout
    flusher = asyncio.create_task(flush_every(0.05))
    client = Client(await load_config(args.kubeconfig))
    # kuar's default cache-sync timeout (120 s, controller-runtime's 2 min) unless the scale
    # row's list needs longer: the larger of that and 60 s + 10 ms per expected object, the
    # same rule as the Go side
    sync_timeout = max(120.0, 60.0 + args.expect / 100)
    manager = Manager(client, ManagerSettings(health=None, cache_sync_timeout=sync_timeout))
    settings = ControllerSettings(
        max_concurrent_reconciles=args.workers,
        rate_limiter=RateLimiterSettings(qps=1e6, burst=1 << 20),
    )
    builder = controller_for(RESOURCE, WatchConfig(namespace=args.namespace), cache=manager.cache)
    store = builder.informer.store

    async def reconcile(request: Request) -> None:
        out.write(f"R {request.name} {time.time_ns()}\n")
        obj = store.get(request)
        if obj is None:
            return
        generation = obj.metadata.generation
        status = obj.get("status")
        if status is not None and status.get("observedGeneration") == generation:
            return
        with contextlib.suppress(NotFound):  # deleted meanwhile: nothing to do
            await patch_status(client, RESOURCE, request, {"observedGeneration": generation})

    manager.add(builder.with_settings(settings).build(reconcile))
    manager.add(_Synced(builder.informer))
    print(f"START {time.time_ns()}", flush=True)
    try:
        await manager.run()
    finally:
        flusher.cancel()
        await client.close()
        out.flush()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--expect", type=int, default=0,
                        help="objects expected (the cache-sync timeout grows with it)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(args))
    else:
        uvloop.run(main(args))


if __name__ == "__main__":
    cli()
