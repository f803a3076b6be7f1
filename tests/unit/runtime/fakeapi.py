"""A scripted HTTP fake of the API server's list and watch endpoints (the transport seam).

Only for protocol edge cases (410 as an ERROR event, silent streams, 429, dropped
connections); behaviour against Kubernetes itself is tested on the real control plane.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from kuar.base.clock import SystemClock
from kuar.client import Client, ClientConfig

Responder = Callable[[web.Request], Awaitable[web.StreamResponse]]


def cm(name: str, rv: str, ns: str = "ns", **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv, "uid": f"u-{name}"},
            **extra}


def page(items: list[dict[str, Any]], rv: str, cont: str | None = None) -> Responder:
    async def respond(request: web.Request) -> web.StreamResponse:
        meta: dict[str, Any] = {"resourceVersion": rv}
        if cont:
            meta["continue"] = cont
        return web.json_response({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": meta,
                                  "items": items})
    return respond


def status(code: int, headers: dict[str, str] | None = None, reason: str = "") -> Responder:
    async def respond(request: web.Request) -> web.StreamResponse:
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                "reason": reason, "message": f"scripted {code}"}
        return web.json_response(body, status=code, headers=headers)
    return respond


@dataclass
class FakeApi:
    """Answers list and watch requests from two scripts, recording every request."""

    lists: list[Responder] = field(default_factory=list)
    watches: list[Responder] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    def stream(self, events: list[dict[str, Any]], end: str = "close") -> Responder:
        """A watch answer: send ``events``, then close, hang silently, or drop the connection."""
        async def respond(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse()
            resp.content_type = "application/json"
            await resp.prepare(request)
            for event in events:
                await resp.write(json.dumps(event).encode() + b"\n")
            if end == "hang":
                await self.release.wait()
            elif end == "drop":
                assert request.transport is not None
                request.transport.abort()
            return resp
        return respond

    async def handle(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        watch = params.get("watch") == "1"
        self.requests.append(("watch" if watch else "list", params))
        script = self.watches if watch else self.lists
        if not script:
            # Out of script: behave like a quiet healthy server until the test ends.
            if watch:
                return await self.stream([], end="hang")(request)
            return await page([], "999")(request)
        return await script.pop(0)(request)

    def of(self, kind: str) -> list[dict[str, str]]:
        return [params for k, params in self.requests if k == kind]


class RecordingClock(SystemClock):
    """Real time, but sleeps are recorded and return at once."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)


async def start_fake() -> tuple[FakeApi, web.AppRunner, Client]:
    api = FakeApi()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", api.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    api.url = f"http://127.0.0.1:{port}"
    return api, runner, Client(ClientConfig(server=api.url, ssl_context=None))
