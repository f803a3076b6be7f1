"""The demo's target: a small HTTPS (or HTTP) service that answers after a little latency.

Run as ``python -m kuar_demo.service --port P [--latency-ms 5] [--cert C --key K]``; it binds
127.0.0.1 unless ``--host`` says otherwise (``0.0.0.0`` in a pod, deploy/demo), answers
every GET with a short text after ``--latency-ms`` milliseconds, and stops on SIGTERM.
``--stall-at S --stall-for D`` makes it hold every request arriving in ``[S, S + D)`` seconds
after its first request for the rest of that window (the coordinated-omission check: an
open-loop generator must report those waits).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import time

from aiohttp import web


def build_app(latency_s: float, stall_at: float | None, stall_for: float) -> web.Application:
    """The aiohttp application: one catch-all GET handler."""
    first: list[float] = []

    async def handle(request: web.Request) -> web.Response:
        if stall_at is not None:
            if not first:
                first.append(time.monotonic())
            now = time.monotonic() - first[0]
            if stall_at <= now < stall_at + stall_for:
                await asyncio.sleep(stall_at + stall_for - now)
        if latency_s:
            await asyncio.sleep(latency_s)
        return web.Response(text=f"kuar demo service: {request.path}\n")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT."""
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(args.cert, args.key)
    app = build_app(args.latency_ms / 1000, args.stall_at, args.stall_for)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=120)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port, ssl_context=context, backlog=1024).start()
    print(f"listening on {args.host}:{args.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    """Parse flags and serve."""
    parser = argparse.ArgumentParser(description="kuar's demo target service")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (0.0.0.0 inside a pod's network namespace)")
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--stall-at", type=float, default=None)
    parser.add_argument("--stall-for", type=float, default=1.0)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
