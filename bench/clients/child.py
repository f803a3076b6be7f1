"""One client library's numbers, in a fresh process: import time, GET/s, latency, RSS.

Standalone on purpose (no kuar import unless measuring kuar) so it runs in another venv:
``python bench/clients/child.py CLIENT --kubeconfig PATH [--requests N] [--concurrency C]``.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any


def _peak_rss_mib() -> float:
    """VmHWM of this process (ru_maxrss would include the parent's peak, kept across exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0

NAME, NAMESPACE = "bench", "default"


async def _kuar(kubeconfig: str, typed: bool) -> tuple[Callable[[], Awaitable[Any]], Any]:
    from kuar.client import Api, Client, load_config
    from kuar.models.core.v1 import ConfigMap

    client = Client(await load_config(kubeconfig))
    if typed:
        api = Api(client, ConfigMap, namespace=NAMESPACE)
        return (lambda: api.get(NAME)), client.close
    path = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{NAME}"
    return (lambda: client.request("GET", path)), client.close


async def _kubernetes_asyncio(kubeconfig: str) -> tuple[Callable[[], Awaitable[Any]], Any]:
    from kubernetes_asyncio import client, config

    await config.load_kube_config(config_file=kubeconfig)
    api_client = client.ApiClient()
    core = client.CoreV1Api(api_client)
    return (lambda: core.read_namespaced_config_map(NAME, NAMESPACE)), api_client.close


async def _lightkube(kubeconfig: str) -> tuple[Callable[[], Awaitable[Any]], Any]:
    from lightkube import AsyncClient, KubeConfig
    from lightkube.resources.core_v1 import ConfigMap

    client = AsyncClient(config=KubeConfig.from_file(kubeconfig))
    return (lambda: client.get(ConfigMap, NAME, namespace=NAMESPACE)), client.close


async def _kr8s(kubeconfig: str) -> tuple[Callable[[], Awaitable[Any]], Any]:
    import kr8s.asyncio
    from kr8s.asyncio.objects import ConfigMap

    api = await kr8s.asyncio.api(kubeconfig=kubeconfig)
    return (lambda: ConfigMap.get(NAME, namespace=NAMESPACE, api=api)), None


FACTORIES = {
    "kuar": lambda kc: _kuar(kc, typed=False),
    "kuar-typed": lambda kc: _kuar(kc, typed=True),
    "kubernetes_asyncio": _kubernetes_asyncio,
    "lightkube": _lightkube,
    "kr8s": _kr8s,
}
IMPORTS = {
    "kuar": "kuar.client", "kuar-typed": "kuar.client", "kubernetes_asyncio":
    "kubernetes_asyncio.client", "lightkube": "lightkube", "kr8s": "kr8s.asyncio",
}


async def _run(name: str, kubeconfig: str, requests: int, concurrency: int) -> dict[str, Any]:
    started = time.perf_counter()
    __import__(IMPORTS[name])
    import_s = time.perf_counter() - started
    get, close = await FACTORIES[name](kubeconfig)
    for _ in range(20):
        await get()
    latencies = []
    for _ in range(200):
        t0 = time.perf_counter()
        await get()
        latencies.append(time.perf_counter() - t0)
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await get()

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    rps = requests / (time.perf_counter() - t0)
    if close is not None:
        result = close()
        if asyncio.iscoroutine(result):
            await result
    return {
        "client": name,
        "python": sys.executable,
        "import_ms": import_s * 1000,
        "p50_ms": statistics.median(latencies) * 1000,
        "rps": rps,
        "peak_rss_mib": _peak_rss_mib(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("client", choices=sorted(FACTORIES))
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_run(args.client, args.kubeconfig, args.requests,
                                      args.concurrency))))
