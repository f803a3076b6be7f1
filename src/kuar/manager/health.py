"""The manager's probe and metrics endpoint: ``/healthz``, ``/readyz`` and Prometheus ``/metrics``.

Place in the pipeline: started first by :class:`kuar.manager.Manager`, so a kubelet can probe
the process while caches sync. Known as the health-probe and metrics servers in
controller-runtime (served here on one port).

Guarantees: ``/healthz`` and ``/readyz`` answer 200 with ``ok`` only when every registered
check passes, else 500 listing the failing checks (``?verbose`` lists all); a check that raises
or takes longer than 5 s counts as failed. ``/metrics`` is the text exposition of the registry.
Binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Check = Callable[[], Awaitable[bool] | bool]


@dataclass(frozen=True, kw_only=True)
class HealthSettings:
    """Where the probe and metrics server listens."""

    host: str = "127.0.0.1"
    """Loopback by default; a pod sets ``0.0.0.0`` so its kubelet can reach it."""
    port: int = 8081
    """controller-runtime's usual health-probe port; 0 picks a free port."""
    check_timeout: float = 5.0
    """A check slower than this fails: probes must answer fast."""


class HealthServer:
    """Serves named liveness and readiness checks and the metrics registry."""

    def __init__(self, registry: CollectorRegistry, settings: HealthSettings | None = None) -> None:
        """Prepare the server (nothing listens until :meth:`start`)."""
        self.registry = registry
        self.settings = settings or HealthSettings()
        self.healthz: dict[str, Check] = {"ping": lambda: True}
        self.readyz: dict[str, Check] = {"ping": lambda: True}
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _run_checks(self, checks: dict[str, Check]) -> dict[str, bool]:
        async def one(check: Check) -> bool:
            try:
                result = check()
                if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                    return bool(await asyncio.wait_for(result, self.settings.check_timeout))
                return bool(result)
            except Exception:  # a failing check is an answer, not a crash
                return False

        names = list(checks)
        results = await asyncio.gather(*(one(checks[n]) for n in names))
        return dict(zip(names, results, strict=True))

    def _probe(self, checks: dict[str, Check]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            results = await self._run_checks(checks)
            ok = all(results.values())
            if "verbose" in request.query or not ok:
                lines = [f"[{'+' if v else '-'}]{k} {'ok' if v else 'failed'}"
                         for k, v in results.items()]
                body = "\n".join(lines) + ("\nok" if ok else "\nfailed")
            else:
                body = "ok"
            return web.Response(text=body, status=200 if ok else 500)

        return handler

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        """Listen; :attr:`port` is the bound port afterwards."""
        app = web.Application()
        app.router.add_get("/healthz", self._probe(self.healthz))
        app.router.add_get("/readyz", self._probe(self.readyz))
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
