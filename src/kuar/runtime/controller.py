"""The controller: watches feed a workqueue; workers run the reconciler on each key.

Place in the pipeline: ties the stages together. Informer changes pass each watch's
predicates and handler into the :class:`~kuar.runtime.workqueue.WorkQueue`; up to
``max_concurrent_reconciles`` workers take keys and call the reconciler
(:mod:`kuar.runtime.reconcile`). Usually built by :func:`kuar.runtime.builder.controller_for`.
Known as ``controller.Controller`` in controller-runtime and ``Controller`` in kube-rs.

Guarantees:
- No reconcile runs before every informer the controller watches (and any extra store in
  ``wait_for``) has synced; changes arriving meanwhile are queued (de-duplicated).
- The reconcile contract of :mod:`kuar.runtime.reconcile`: an exception retries the key with
  its own exponential backoff, a success resets it, a :class:`TerminalError` is recorded and
  not retried, a 429 waits at least ``Retry-After``. One failing key never holds back others
  beyond the worker it occupies while running. A 409 Conflict (a write based on a stale read,
  normal when something else changed the object meanwhile) is retried the same way but logged
  at INFO without a traceback, since the next reconcile reads the newer version; every other
  failure is logged at ERROR.
- Each reconcile gets a fresh reconcile id; it and the key are on every log record emitted
  during the reconcile (:mod:`kuar.runtime.log`) and on kuar's own records as ``extra``.
- Metrics under controller-runtime's names (:mod:`kuar.runtime.metrics`).
- :meth:`Controller.run` returns (or, when cancelled, re-raises) only after a graceful
  shutdown: handlers detached, pending keys drained for up to ``shutdown_timeout`` seconds,
  then remaining workers cancelled.
Errors: :meth:`Controller.run` raises ``TimeoutError`` when the caches do not sync within
``cache_sync_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry

from kuar.base.clock import SYSTEM_CLOCK, Clock
from kuar.client import Conflict, TooManyRequests
from kuar.runtime.handlers import EventHandler
from kuar.runtime.informer import Informer
from kuar.runtime.log import ReconcileContext, new_reconcile_id, reconcile_context
from kuar.runtime.metrics import runtime_metrics
from kuar.runtime.predicates import Predicate
from kuar.runtime.ratelimit import RateLimiterSettings, default_controller_rate_limiter
from kuar.runtime.reconcile import Reconciler, Request, Result, TerminalError
from kuar.runtime.store import Change, Store
from kuar.runtime.workqueue import QueueShutDown, WorkQueue

log = logging.getLogger("kuar.runtime.controller")

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class ControllerSettings:
    """How a controller runs its reconciles."""

    max_concurrent_reconciles: int = 1
    """Workers, i.e. reconciles running at once (distinct keys). controller-runtime's
    default; raise it when reconciles mostly wait on the API server."""
    rate_limiter: RateLimiterSettings = field(default_factory=RateLimiterSettings)
    """Retry backoff: 5 ms doubling to 1000 s per key, 10/s (burst 100) overall."""
    cache_sync_timeout: float = 120.0
    """Give up starting when the caches are not synced after 2 min (controller-runtime's
    ``CacheSyncTimeout``): usually missing RBAC or a missing CRD."""
    reconcile_timeout: float | None = None
    """Cancel a reconcile running longer than this (then it counts as an error and is
    retried); ``None`` lets reconciles run as long as they need."""
    shutdown_timeout: float = 30.0
    """On stop, wait this long for queued and running reconciles before cancelling them
    (controller-runtime's ``GracefulShutdownTimeout``)."""


@dataclass(frozen=True)
class Watch(Generic[T]):
    """One source of requests: an informer, predicates and a handler."""

    informer: Informer[T]
    handler: EventHandler[T]
    predicates: tuple[Predicate, ...] = ()


class Controller:
    """Runs a reconciler over the keys produced by its watches (see the module docstring)."""

    def __init__(
        self,
        name: str,
        reconciler: Reconciler,
        *,
        watches: Sequence[Watch[Any]],
        settings: ControllerSettings | None = None,
        wait_for: Sequence[Store[Any] | Informer[Any]] = (),
        clock: Clock = SYSTEM_CLOCK,
        registry: CollectorRegistry | None = None,
    ) -> None:
        """A controller named ``name`` (its metrics label and log field)."""
        self.name = name
        self.reconciler = reconciler
        self.watches = list(watches)
        self.settings = settings or ControllerSettings()
        self.clock = clock
        self.queue: WorkQueue[Request] = WorkQueue(
            name,
            rate_limiter=default_controller_rate_limiter(self.settings.rate_limiter, clock),
            clock=clock,
            registry=registry,
        )
        self._wait_for = [w.store if isinstance(w, Informer) else w for w in wait_for]
        m = runtime_metrics(registry)
        self._m_total = {
            r: m.reconcile_total.labels(name, r)
            for r in ("success", "error", "requeue", "requeue_after")
        }
        self._m_success = self._m_total["success"]
        self._m_errors = m.reconcile_errors.labels(name)
        self._m_terminal = m.terminal_reconcile_errors.labels(name)
        self._m_time = m.reconcile_time.labels(name)
        self._m_active = m.active_workers.labels(name)
        m.max_concurrent_reconciles.labels(name).set(self.settings.max_concurrent_reconciles)
        self._m_active.set(0)
        self._stop: asyncio.Event | None = None
        self._started = False

    # --- sources -------------------------------------------------------------------------
    def _enqueuer(self, watch: Watch[Any]) -> Any:
        add = self.queue.add
        handler = watch.handler
        predicates = watch.predicates

        def on_change(change: Change[Any]) -> None:
            for predicate in predicates:
                if not predicate(change):
                    return
            for request in handler(change):
                add(request)

        return on_change

    # --- running -------------------------------------------------------------------------
    async def run(self) -> None:
        """Start the watches, wait for the caches, reconcile until :meth:`stop` or cancel."""
        if self._started:
            raise RuntimeError(f"controller {self.name} was already started")
        self._started = True
        self._stop = asyncio.Event()
        removers = [w.informer.add_handler(self._enqueuer(w)) for w in self.watches]
        workers: list[asyncio.Task[None]] = []
        try:
            for watch in self.watches:
                watch.informer.start()
            stores = [w.informer.store for w in self.watches] + self._wait_for
            log.info("controller %s: waiting for %d caches", self.name, len(stores))
            async with asyncio.timeout(self.settings.cache_sync_timeout):
                await asyncio.gather(*(s.wait_until_synced() for s in stores))
            log.info(
                "controller %s: caches synced; starting %d workers", self.name,
                self.settings.max_concurrent_reconciles,
            )
            workers = [
                asyncio.get_running_loop().create_task(self._worker(), name=f"{self.name}-{i}")
                for i in range(self.settings.max_concurrent_reconciles)
            ]
            await self._stop.wait()
        finally:
            for remove in removers:
                remove()
            await self._shutdown(workers)

    async def _shutdown(self, workers: list[asyncio.Task[None]]) -> None:
        if workers:
            try:
                async with asyncio.timeout(self.settings.shutdown_timeout):
                    await self.queue.shutdown(drain=True)
            except TimeoutError:
                log.warning(
                    "controller %s: reconciles still running after %.0f s; cancelling",
                    self.name, self.settings.shutdown_timeout,
                )
        else:
            await self.queue.shutdown(drain=False)
        for task in workers:
            task.cancel()
        if workers:
            await asyncio.wait(workers)
        log.info("controller %s: stopped", self.name)

    def stop(self) -> None:
        """Ask :meth:`run` to shut down gracefully and return."""
        if self._stop is not None:
            self._stop.set()

    async def _worker(self) -> None:
        queue = self.queue
        active = self._m_active
        while True:
            try:
                key = await queue.get()
            except QueueShutDown:
                return
            active.value += 1
            try:
                await self.reconcile_key(key)
            finally:
                active.value -= 1
                queue.done(key)

    async def reconcile_key(self, key: Request) -> None:
        """Run the reconciler once for ``key`` and requeue per the contract (used by workers)."""
        context = ReconcileContext(self.name, str(key), new_reconcile_id())
        token = reconcile_context.set(context)
        started = time.perf_counter()
        queue = self.queue
        try:
            timeout = self.settings.reconcile_timeout
            if timeout is not None:
                async with asyncio.timeout(timeout):
                    result = await self.reconciler(key)
            else:
                result = await self.reconciler(key)
        except TerminalError as exc:
            self._m_errors.inc()
            self._m_terminal.inc()
            self._m_total["error"].inc()
            queue.forget(key)
            log.error("reconcile of %s failed terminally: %s", key, exc, extra=_extra(context))
        except TooManyRequests as exc:
            self._m_errors.inc()
            self._m_total["error"].inc()
            delay = queue.rate_limiter.when(key)
            if exc.retry_after:
                delay = max(delay, exc.retry_after)
            queue.add_after(key, delay)
            log.warning(
                "reconcile of %s throttled by the API server; retrying in %.2f s", key, delay,
                extra=_extra(context),
            )
        except Exception as exc:
            self._m_errors.inc()
            self._m_total["error"].inc()
            queue.add_rate_limited(key)
            if type(exc) is Conflict:  # not AlreadyExists: only a stale resourceVersion
                log.info(
                    "reconcile of %s wrote over a newer version (409 Conflict); retrying with "
                    "a fresh read (retry %d)", key, queue.num_requeues(key),
                    extra=_extra(context),
                )
            else:
                log.error(
                    "reconcile of %s failed (retry %d): %s", key, queue.num_requeues(key), exc,
                    exc_info=not isinstance(exc, TimeoutError), extra=_extra(context),
                )
        else:
            outcome = result if result is not None else Result.done()
            if outcome.requeue_after is not None:
                queue.forget(key)
                queue.add_after(key, outcome.requeue_after)
                self._m_total["requeue_after"].inc()
            elif outcome.rate_limited:
                queue.add_rate_limited(key)
                self._m_total["requeue"].inc()
            else:
                queue.forget(key)
                self._m_success.value += 1
            if log.isEnabledFor(logging.DEBUG):
                log.debug("reconciled %s: %s", key, outcome, extra=_extra(context))
        finally:
            self._m_time.observe(time.perf_counter() - started)
            reconcile_context.reset(token)

    def enqueue(self, requests: Iterable[Request]) -> None:
        """Queue ``requests`` by hand (e.g. from an external trigger)."""
        for request in requests:
            self.queue.add(request)


def _extra(context: ReconcileContext) -> dict[str, str]:
    """The reconcile's fields as a log record's ``extra`` (built only when logging)."""
    return {"controller": context.controller, "key": context.key,
            "reconcile_id": context.reconcile_id}
