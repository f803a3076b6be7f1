"""The webhook HTTPS server: routes AdmissionReviews and ConversionReviews to their handlers.

Place in the pipeline: the API server (over TLS) -> :class:`WebhookServer` -> the
:mod:`~kuar.webhook.review` parsers -> a webhook of :mod:`kuar.webhook.admission` or
:mod:`kuar.webhook.conversion` -> the JSON answer. A runnable with ``async start()``,
``async stop()`` and a :attr:`WebhookServer.ready` event, so the manager can run it beside
controllers, and it also runs alone (``async with WebhookServer(...)``). Known as
``webhook.Server`` in controller-runtime. Built on aiohttp and the standard ``ssl`` module
(docs/decisions/0007-webhook-tls-server.md).

Guarantees:
- HTTPS only, TLS 1.2 or newer (TLS 1.2 with ECDHE and AEAD suites only); the certificate
  can be replaced while serving (:meth:`WebhookServer.reload`, or a
  :class:`~kuar.webhook.rotation.CertificateManager`). With
  :attr:`WebhookServerSettings.client_ca_file` a client must present a certificate signed by
  that CA (API servers that authenticate to their webhooks).
- Every answer is JSON. A body that is not a usable review gets a 4xx with a ``Status``
  body: 400 (malformed JSON, nested too deeply, wrong kind, missing uid...), 413 (over
  ``max_body_bytes``, refused from ``Content-Length`` before reading), 415 (not
  ``application/json``), 408 (body not received within ``body_timeout``), 404/405 for
  unknown paths and methods. An unexpected failure is a 500 with a ``Status`` body; the
  process never crashes on input.
- A slow TLS handshake is dropped after ``handshake_timeout``; handlers are bounded by their
  webhook's time budget (see :mod:`kuar.webhook.admission`; conversions run in a worker
  thread with the same budget, see :mod:`kuar.webhook.conversion`).
- :meth:`WebhookServer.stop` stops accepting, lets requests in flight finish (up to
  ``shutdown_timeout``), then closes connections.
Metrics (controller-runtime's names; in the registry given, else kuar's
:data:`kuar.base.metrics.REGISTRY`, which the manager's ``/metrics`` serves):
``controller_runtime_webhook_requests_total{webhook,code}``,
``controller_runtime_webhook_latency_seconds{webhook}``,
``controller_runtime_webhook_requests_in_flight{webhook}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kuar.base.metrics import REGISTRY
from kuar.webhook.admission import AdmissionWebhook
from kuar.webhook.conversion import ConversionWebhook
from kuar.webhook.review import (
    NESTED_TOO_DEEPLY,
    ReviewError,
    parse_admission_review,
    parse_conversion_review,
    status_body,
)
from kuar.webhook.rotation import CertificateManager
from kuar.webhook.tls import ReloadableTls, ServingCertificate

log = logging.getLogger("kuar.webhook.server")

class _Metrics:
    """controller-runtime's webhook metrics, registered once per registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "controller_runtime_webhook_requests_total",
            "Admission and conversion requests served, by HTTP status code.",
            ["webhook", "code"], registry=registry)
        self.latency = Histogram(
            "controller_runtime_webhook_latency_seconds", "Time to answer a webhook request.",
            ["webhook"], registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                     2.5, 5.0, 10.0))
        self.in_flight = Gauge(
            "controller_runtime_webhook_requests_in_flight", "Webhook requests being served.",
            ["webhook"], registry=registry)


_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, _Metrics] = weakref.WeakKeyDictionary()


def _metrics(registry: CollectorRegistry) -> _Metrics:
    found = _METRICS.get(registry)
    if found is None:
        found = _METRICS[registry] = _Metrics(registry)
    return found


@dataclass(frozen=True, kw_only=True)
class WebhookServerSettings:
    """How the webhook server listens and what it accepts."""

    host: str = "127.0.0.1"
    """Address to bind. Loopback by default (local development, tests, and the project's rule
    that servers bind to 127.0.0.1); a pod sets ``0.0.0.0`` so the API server reaches its IP."""
    port: int = 9443
    """TCP port; 9443 is controller-runtime's default; 0 picks a free port."""
    max_body_bytes: int = 7 * 1024 * 1024
    """Largest accepted body: an object (up to ~1.5 MiB in etcd) twice plus the review,
    with room to spare; controller-runtime uses the same 7 MiB."""
    body_timeout: float = 10.0
    """Seconds to receive a whole body once headers arrived."""
    handshake_timeout: float = 10.0
    """Seconds a client gets to finish the TLS handshake."""
    keepalive_timeout: float = 120.0
    """Idle seconds before a kept-alive connection is closed. Longer than the API server's
    own idle timeout (90 s), so the client closes first: a server closing a connection the
    client is about to reuse can fail a non-idempotent POST."""
    shutdown_timeout: float = 10.0
    """Seconds :meth:`WebhookServer.stop` waits for requests in flight."""
    backlog: int = 1024
    """Listen backlog (bursts of new connections from several API servers)."""
    reuse_port: bool = False
    """Bind with ``SO_REUSEPORT``: several processes (one per core) serve the same port and the
    kernel spreads new connections over them (connections, not requests: every request on a
    kept-alive connection goes to the process that accepted it). Every process must set it
    and serve the same certificate. ``examples/webhook_processes`` starts N such processes;
    the guide's "Scaling webhooks" section and docs/decisions/0025 have the measurements
    (``python -m bench.webhook --processes N``)."""
    client_ca_file: str | None = None
    """PEM bundle of the CA(s) that sign the API server's client certificate. When set, every
    client must present a certificate signed by one of them (TLS client authentication,
    ``CERT_REQUIRED``); clients without one are refused during the handshake. For API servers
    configured to present a certificate to webhooks (``--admission-control-config-file`` with
    a ``WebhookAdmissionConfiguration`` kubeconfig). ``None``: no client certificate asked."""


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


Route = Callable[[bytes], Awaitable[dict[str, Any]]]


class _Entry:
    """One route and its metric children (looked up once: ``labels()`` costs per call)."""

    def __init__(self, name: str, route: Route, metrics: _Metrics) -> None:
        self.name = name
        self.route = route
        self._metrics = metrics
        self.in_flight = metrics.in_flight.labels(name)
        self.latency = metrics.latency.labels(name)
        self._requests: dict[int, Any] = {}

    def requests(self, code: int) -> Any:
        child = self._requests.get(code)
        if child is None:
            child = self._requests[code] = self._metrics.requests.labels(self.name, str(code))
        return child


class WebhookServer:
    """Serves admission and conversion webhooks over HTTPS."""

    def __init__(
        self,
        *,
        webhooks: Sequence[AdmissionWebhook[Any]] = (),
        conversions: Sequence[ConversionWebhook] = (),
        certificates: ServingCertificate | CertificateManager | None = None,
        settings: WebhookServerSettings | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        """Register the webhooks; nothing listens until :meth:`start`.

        ``certificates`` is a fixed pair or a :class:`CertificateManager` (started and stopped
        with the server); with ``None`` call :meth:`reload` before :meth:`start`.
        ``registry`` receives the metrics (default: Prometheus' global registry; under a
        manager pass ``manager.registry`` so its ``/metrics`` shows them).
        """
        self.settings = settings or WebhookServerSettings()
        self._metrics = _metrics(registry if registry is not None else REGISTRY)
        self.manager = certificates if isinstance(certificates, CertificateManager) else None
        self.tls = self.manager.tls if self.manager is not None else ReloadableTls(
            certificates if isinstance(certificates, ServingCertificate) else None)
        self._routes: dict[str, _Entry] = {}
        for hook in webhooks:
            self._add(hook.path, hook.name, self._admission_route(hook))
        for conv in conversions:
            self._add(conv.path, "conversion", self._conversion_route(conv))
        self.ready = asyncio.Event()
        """Set once the server accepts connections."""
        self._runner: web.ServerRunner | None = None
        self._server: asyncio.Server | None = None

    def _add(self, path: str, name: str, route: Route) -> None:
        if path in self._routes:
            raise ValueError(f"two webhooks want path {path!r}")
        self._routes[path] = _Entry(name, route, self._metrics)

    @staticmethod
    def _admission_route(hook: AdmissionWebhook[Any]) -> Route:
        async def route(body: bytes) -> dict[str, Any]:
            return await hook.review(parse_admission_review(body))
        return route

    @staticmethod
    def _conversion_route(conv: ConversionWebhook) -> Route:
        async def route(body: bytes) -> dict[str, Any]:
            return await conv.answer(parse_conversion_review(body))
        return route

    # --- requests ----------------------------------------------------------------------
    async def _read(self, request: web.BaseRequest) -> bytes:
        s = self.settings
        length = request.content_length
        if length is not None and length > s.max_body_bytes:
            raise ReviewError(f"body of {length} bytes is over the {s.max_body_bytes} limit",
                              code=413)
        if request.content_type != "application/json":
            raise ReviewError(f"Content-Type must be application/json, got "
                              f"{request.content_type!r}", code=415)
        try:
            if request.content.is_eof():  # the whole body came with the headers: no timer
                return await request.read()
            async with asyncio.timeout(s.body_timeout):
                return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise ReviewError(f"body is over the {s.max_body_bytes} limit", code=413) from None
        except TimeoutError:
            raise ReviewError(f"body not received within {s.body_timeout:g} s",
                              code=408) from None

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        entry = self._routes.get(request.path)
        if entry is None:
            if request.path in ("/healthz", "/readyz") and request.method == "GET":
                return self._health()
            return _json(status_body(404, f"no webhook at {request.path}"), 404)
        if request.method != "POST":
            return _json(status_body(405, f"{request.method} not allowed; use POST"), 405)
        started = time.perf_counter()
        entry.in_flight.inc()
        code = 200
        try:
            body = await self._read(request)
            response = _json(await entry.route(body))
        except ReviewError as exc:
            code = exc.code
            response = _json(status_body(exc.code, exc.message), exc.code)
        except RecursionError:  # parsed, but too deep for what follows (encode, patch...)
            code = 400
            response = _json(status_body(400, NESTED_TOO_DEEPLY), 400)
        except Exception:
            log.exception("webhook %s: unexpected failure", entry.name)
            code = 500
            response = _json(status_body(500, "internal error"), 500)
        finally:
            entry.in_flight.dec()
        entry.requests(code).inc()
        entry.latency.observe(time.perf_counter() - started)
        return response

    def _health(self) -> web.Response:
        ok = self.tls.current is not None
        return _json({"status": "ok" if ok else "no certificate"}, 200 if ok else 503)

    # --- life cycle --------------------------------------------------------------------
    def reload(self, cert: ServingCertificate) -> None:
        """Serve ``cert`` to new connections from now on (raises if unusable)."""
        self.tls.load(cert)

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        assert self._server is not None, "server not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """``https://host:port`` of the running server."""
        host = self.settings.host if self.settings.host not in ("0.0.0.0", "") else "127.0.0.1"  # noqa: S104
        return f"https://{host}:{self.port}"

    async def start(self) -> None:
        """Get a certificate (if managed), bind, and start serving; sets :attr:`ready`."""
        if self.manager is not None:
            await self.manager.start()
        try:
            await self._listen()
        except BaseException:
            await self.stop()
            raise
        self.ready.set()
        log.info("webhook server listening on %s (%d routes)", self.url, len(self._routes))

    async def _listen(self) -> None:
        if self.tls.current is None:
            raise RuntimeError("WebhookServer has no certificate: pass certificates= or reload()")
        s = self.settings
        if s.client_ca_file is not None:
            self.tls.require_client_certificates(s.client_ca_file)
        loop = asyncio.get_running_loop()

        def request_factory(message: Any, payload: Any, protocol: Any, writer: Any,
                            task: Any) -> web.BaseRequest:
            return web.BaseRequest(message, payload, protocol, writer, task, loop,
                                   client_max_size=s.max_body_bytes)

        # aiohttp's low-level server: no Application router or middlewares on the hot path;
        # _dispatch looks the path up in one dict.
        server = web.Server(self._dispatch, request_factory=request_factory, access_log=None,
                            keepalive_timeout=s.keepalive_timeout)
        self._runner = web.ServerRunner(server, shutdown_timeout=s.shutdown_timeout)
        await self._runner.setup()
        assert self._runner.server is not None
        self._server = await loop.create_server(
            self._runner.server, s.host, s.port, ssl=self.tls.context,
            ssl_handshake_timeout=s.handshake_timeout, backlog=s.backlog, reuse_address=True,
            reuse_port=s.reuse_port or None)

    async def stop(self) -> None:
        """Stop accepting, finish requests in flight, close (safe to call twice)."""
        self.ready.clear()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.manager is not None:
            await self.manager.stop()

    needs_leader_election = False
    """Every replica serves webhooks (the manager runs this before electing a leader)."""

    async def run(self) -> None:
        """Start and serve until cancelled, then stop (the manager's ``Runnable``)."""
        await self.serve()

    async def serve(self) -> None:
        """Start and run until cancelled, then stop."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> WebhookServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
