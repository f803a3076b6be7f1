"""The manager's probe and metrics endpoint: ``/healthz``, ``/readyz`` and Prometheus ``/metrics``.

Place in the pipeline: started first by :class:`kuar.manager.Manager`, so a kubelet can probe
the process while caches sync. Known as the health-probe and metrics servers in
controller-runtime (served here on one port).

Guarantees: ``/healthz`` and ``/readyz`` answer 200 with ``ok`` only when every registered
check passes, else 500 listing the failing checks (``?verbose`` lists all); a check that raises
or takes longer than 5 s counts as failed; the failing checks' names and their last reason
(:meth:`HealthServer.set_reason`) are logged once per change, so a pod that is not ready says
why in its log. ``/metrics`` is the text exposition of the registry, on the probe port or, when
``metrics_port`` is set, on a listener of its own (controller-runtime's two addresses).
Binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("kuar.manager.health")

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
    metrics_host: str | None = None
    """Address of a separate ``/metrics`` listener (``None``: the same as ``host``)."""
    metrics_port: int | None = None
    """Port of a separate ``/metrics`` listener (``None``: ``/metrics`` on the probe port;
    controller-runtime's metrics port is 8080; 0 picks a free port)."""


class HealthServer:
    """Serves named liveness and readiness checks and the metrics registry."""

    def __init__(self, registry: CollectorRegistry, settings: HealthSettings | None = None) -> None:
        """Prepare the server (nothing listens until :meth:`start`)."""
        self.registry = registry
        self.settings = settings or HealthSettings()
        self.healthz: dict[str, Check] = {"ping": lambda: True}
        self.readyz: dict[str, Check] = {"ping": lambda: True}
        self._runners: list[web.AppRunner] = []
        self.port = 0
        self.metrics_port = 0
        """The port serving ``/metrics`` (the probe port when there is no separate one)."""
        self.reasons: dict[str, str] = {}
        """Why a check fails, by check name (shown by ``?verbose`` and logged)."""
        self._logged: frozenset[str] = frozenset()

    def set_reason(self, name: str, reason: str | None) -> None:
        """Record (or clear, with ``None``) why check ``name`` fails."""
        if reason:
            self.reasons[name] = reason
        else:
            self.reasons.pop(name, None)

    async def _run_checks(self, checks: dict[str, Check]) -> dict[str, bool]:
        async def one(check: Check) -> bool:
            try:
                result = check()
                if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                    async with asyncio.timeout(self.settings.check_timeout):
                        return bool(await result)
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
            failing = frozenset(k for k, v in results.items() if not v)
            if checks is self.readyz and failing != self._logged:
                self._logged = failing
                if failing:
                    log.warning("not ready: %s", "; ".join(
                        f"{k}: {self.reasons.get(k, 'failed')}" for k in sorted(failing)))
                else:
                    log.info("ready")
            if "verbose" in request.query or not ok:
                lines = [f"[+]{k} ok" if v else f"[-]{k} failed" + (
                    f": {self.reasons[k]}" if k in self.reasons else "")
                    for k, v in results.items()]
                body = "\n".join(lines) + ("\nok" if ok else "\nfailed")
            else:
                body = "ok"
            from aiohttp import web  # imported by start() already: a dict lookup

            return web.Response(text=body, status=200 if ok else 500)

        return handler

    async def _metrics(self, _request: web.Request) -> web.Response:
        from aiohttp import web

        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        """Listen; :attr:`port` (and :attr:`metrics_port`) are the bound ports afterwards.

        aiohttp's server side is imported here, not with the module: a manager without a
        probe server (``ManagerSettings(health=None)``) never loads it (~1.2 MiB of RSS).
        """
        from aiohttp import web

        s = self.settings
        app = web.Application()
        app.router.add_get("/healthz", self._probe(self.healthz))
        app.router.add_get("/readyz", self._probe(self.readyz))
        separate = s.metrics_port is not None
        if not separate:
            app.router.add_get("/metrics", self._metrics)
        try:
            self.port = await self._listen(app, s.host, s.port)
            self.metrics_port = self.port
            if separate:
                metrics = web.Application()
                metrics.router.add_get("/metrics", self._metrics)
                self.metrics_port = await self._listen(
                    metrics, s.metrics_host or s.host, s.metrics_port or 0)
        except BaseException:
            await self.stop()
            raise

    async def _listen(self, app: web.Application, host: str, port: int) -> int:
        from aiohttp import web

        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        await web.TCPSite(runner, host, port).start()
        bound: int = runner.addresses[0][1]
        return bound

    async def stop(self) -> None:
        """Stop listening."""
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()
