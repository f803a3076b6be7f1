"""A test HTTP server that counts what it receives: method, path, X-Kind header, body.

Run as ``python -m tests.e2e.counting_server PORT``; ``GET /_counts`` answers the counts as
JSON (``{"POST /orders a <sha256 of body>": n}``). Binds 127.0.0.1 only.
"""

from __future__ import annotations

import collections
import hashlib
import sys

from aiohttp import web

COUNTS: collections.Counter[str] = collections.Counter()


async def _count(request: web.Request) -> web.Response:
    body = await request.read()
    digest = hashlib.sha256(body).hexdigest()[:12] if body else "-"
    COUNTS[f"{request.method} {request.path} {request.headers.get('X-Kind', '-')} "
           f"{digest}"] += 1
    return web.Response(text="ok")


async def _counts(request: web.Request) -> web.Response:
    return web.json_response(dict(COUNTS))


def main() -> None:
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_get("/_counts", _counts)
    app.router.add_route("*", "/{tail:.*}", _count)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)


if __name__ == "__main__":
    main()
