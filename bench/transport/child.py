"""One HTTP transport's cost per request, in a fresh process: CPU-ms/request, requests/s, import.

Place in the pipeline: started by ``bench.transport.__main__`` once per variant and run;
prints one JSON line. Every variant does the same work per request as ``kuar.client.Client``:
ask the token source, JSON-encode the body, send, read, JSON-decode, map the status.

Variants: ``thin`` (kuar.client.Client, asyncio + httptools), ``aiohttp`` (the transport kuar
used before docs/decisions/0024: one pooled ``ClientSession``, same settings),
``httpx-h1`` and ``httpx-h2`` (``httpx.AsyncClient``; HTTP/2 is one multiplexed TLS
connection, as client-go uses).

``python -m bench.transport.child VARIANT --kubeconfig PATH --mode patch|get
[--requests N] [--concurrency C] [--warm W]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

NAMESPACE = "default"
PLURAL_PATH = f"/apis/bench.kuar.com/v1/namespaces/{NAMESPACE}/benchloads"
GET_PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps/bench"
MERGE_PATCH = "application/merge-patch+json"
LIBRARIES = {"thin": ["httptools"], "aiohttp": ["aiohttp"], "httpx-h1": ["httpx"],
             "httpx-h2": ["httpx", "h2"]}

Send = Callable[[str, str, Any], Awaitable[Any]]


def _status_kib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0.0


def _encode(body: Any) -> bytes | None:
    return None if body is None else json.dumps(body, separators=(",", ":")).encode()


def _decode(status: int, raw: bytes) -> Any:
    decoded = json.loads(raw) if raw else None
    if status >= 300:
        raise RuntimeError(f"HTTP {status}: {raw[:200]!r}")
    return decoded


async def _auth(config: Any, content_type: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    token = await config.token()
    if token:
        headers["Authorization"] = token if token.startswith(("Bearer ", "Basic ")) \
            else f"Bearer {token}"
    return headers


async def _thin(config: Any) -> tuple[Send, Callable[[], Awaitable[None]]]:
    from kuar.client import Client

    client = Client(config)

    async def send(method: str, path: str, body: Any) -> Any:
        return await client.request(method, path, body=body,
                                    content_type=MERGE_PATCH if body is not None else None)

    return send, client.close


async def _aiohttp(config: Any) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(
        base_url=config.server,
        connector=aiohttp.TCPConnector(ssl=config.ssl_context or False, limit=100,
                                       keepalive_timeout=30),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))

    async def send(method: str, path: str, body: Any) -> Any:
        headers = await _auth(config, MERGE_PATCH if body is not None else None)
        async with session.request(method, path, params={}, data=_encode(body),
                                   headers=headers,
                                   timeout=aiohttp.ClientTimeout(total=60, sock_connect=10)
                                   ) as resp:
            raw = await resp.read()
            resp.headers.get("Retry-After")
            return _decode(resp.status, raw)

    return send, session.close


async def _httpx(config: Any, http2: bool) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import httpx

    client = httpx.AsyncClient(
        base_url=config.server, verify=config.ssl_context or False, http1=not http2,
        http2=http2, timeout=httpx.Timeout(60, connect=10),
        limits=httpx.Limits(max_connections=100, keepalive_expiry=30))

    async def send(method: str, path: str, body: Any) -> Any:
        headers = await _auth(config, MERGE_PATCH if body is not None else None)
        resp = await client.request(method, path, content=_encode(body), headers=headers)
        resp.headers.get("Retry-After")
        return _decode(resp.status_code, resp.content)

    return send, client.aclose


Factory = Callable[[Any], Awaitable[tuple[Send, Callable[[], Awaitable[None]]]]]
FACTORIES: dict[str, Factory] = {
    "thin": _thin, "aiohttp": _aiohttp,
    "httpx-h1": lambda c: _httpx(c, False), "httpx-h2": lambda c: _httpx(c, True),
}


async def _run(variant: str, kubeconfig: str, mode: str, requests: int, concurrency: int,
               warm: int, import_ms: float, import_mib: float) -> dict[str, Any]:
    from kuar.client.config import load_config

    send, close = await FACTORIES[variant](await load_config(kubeconfig))
    counter = 0

    async def lane(index: int, count: int) -> None:
        nonlocal counter
        for _ in range(count):
            counter += 1
            if mode == "patch":
                await send("PATCH", f"{PLURAL_PATH}/obj-{index}/status",
                           {"status": {"observedGeneration": counter, "phase": f"p{counter}"}})
            else:
                await send("GET", GET_PATH, None)

    await asyncio.gather(*(lane(i, warm) for i in range(concurrency)))  # connections open, warm
    per_lane = requests // concurrency
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(lane(i, per_lane) for i in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await close()
    done = per_lane * concurrency
    return {"variant": variant, "mode": mode, "requests": done,
            "cpu_ms_per_request": cpu * 1000 / done, "requests_per_s": done / wall,
            "import_ms": import_ms, "import_mib": import_mib,
            "peak_rss_mib": _status_kib("VmHWM:") / 1024}


def main() -> None:
    """Parse the arguments, time the library import, run the load, print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=sorted(FACTORIES))
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--mode", choices=("patch", "get"), required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--warm", type=int, default=20, help="untimed requests per lane first")
    args = parser.parse_args()
    rss0 = _status_kib("VmRSS:")
    started = time.perf_counter()
    for module in LIBRARIES[args.variant]:
        __import__(module)
    import_ms = (time.perf_counter() - started) * 1000
    import_mib = (_status_kib("VmRSS:") - rss0) / 1024
    print(json.dumps(asyncio.run(_run(args.variant, args.kubeconfig, args.mode, args.requests,
                                      args.concurrency, args.warm, import_ms, import_mib))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
