"""Listing N LoadTests through the typed client vs raw dicts: time and peak RSS per variant.

Each variant runs in its own Python process (``python -m bench.typed.listing VARIANT ...``) so
its peak RSS (``ru_maxrss``) is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from kuar.client import Api, Client, load_config
from kuar_loadtest.api.v2 import LoadTest  # the stored version (no conversion webhook)

VARIANTS = {
    "typed-paged": "Api[LoadTest].list_all(page_size=500), kept in a list",
    "typed-one-page": "Api[LoadTest].list() without limit",
    "typed-streamed": "Api[LoadTest].list_all(page_size=500), counted, not kept",
    "dict-paged": "Client.request pages of 500 (plain dicts), kept in a list",
}


def _peak_rss_mib() -> float:
    """VmHWM of this process (ru_maxrss would include the parent's peak, kept across exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _measure(variant: str, kubeconfig: str, namespace: str) -> dict[str, Any]:
    async with Client(await load_config(kubeconfig)) as client:
        api = Api(client, LoadTest, namespace=namespace)
        await api.list(limit=1)  # connect and warm up imports outside the timing
        started = time.perf_counter()
        if variant == "typed-paged":
            items: list[Any] = [o async for o in api.list_all(page_size=500)]
            count = len(items)
        elif variant == "typed-one-page":
            count = len((await api.list(timeout=300)).items)
        elif variant == "typed-streamed":
            count = 0
            async for _ in api.list_all(page_size=500):
                count += 1
        else:
            items, token = [], None
            while True:
                body = await client.request(
                    "GET", LoadTest.resource_info().path(namespace),
                    params={"limit": 500, "continue": token})
                items.extend(body["items"])
                token = body["metadata"].get("continue")
                if not token:
                    break
            count = len(items)
        elapsed = time.perf_counter() - started
    return {"variant": variant, "count": count, "seconds": elapsed,
            "peak_rss_mib": _peak_rss_mib()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_measure(args.variant, args.kubeconfig, args.namespace))))
