"""The manager: runs controllers, webhook servers and other runnables as one process.

Place in the pipeline: the top of an operator (``cli`` > ``manager`` > ``runtime``/``webhook``).
Known as ``manager.Manager`` in controller-runtime.

Start order (each step waits for the previous one):
1. the probe/metrics server (``/healthz``, ``/readyz``, ``/metrics``);
1b. the access check, when ``required_access`` is set: SelfSubjectAccessReviews for every
   declared permission; while any is missing, the missing ones are logged (one line naming
   each, with why it is needed), ``/readyz`` fails with the same reason, and the check is
   repeated every ``access_recheck`` seconds, so granting the rights later lets the start
   continue without a restart (no crash loop without an explanation). After the start the
   check keeps running at that period and readiness follows it;
2. runnables that do not need leadership (webhook servers, ...), on every replica;
3. the shared informer cache, also on every replica, so a standby has warm caches;
   ``/readyz`` passes once it has synced;
4. leader election (when configured), then the leader-only runnables (controllers).
Stop order is the reverse, on SIGTERM/SIGINT (when :meth:`run` installs handlers) or
:meth:`stop`: leader-only work is cancelled first and the Lease is released, so a standby
takes over at once; ``/readyz`` fails from then on; after ``drain_delay`` seconds (time for
the endpoints controller to take the pod out of its Services, so no new webhook call is
routed here) the other runnables are stopped (a webhook server finishes requests in flight),
then caches and the probe server.

Guarantees: a runnable that fails (raises) stops the whole manager, and :meth:`run` re-raises
that failure after the ordered stop, so a supervisor restarts the process (controller-runtime's
behaviour). Losing leadership also ends :meth:`run` with :class:`LeadershipLost`: a process that
lost its lease must not keep acting as leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry

from kuar.base.metrics import REGISTRY
from kuar.client import ApiError, Client, Permission, TransportError, missing_access
from kuar.manager.health import HealthServer, HealthSettings
from kuar.manager.leader import LeaderElectionSettings, LeaderElector
from kuar.runtime.informer import InformerCache

log = logging.getLogger("kuar.manager")


@runtime_checkable
class Runnable(Protocol):
    """Anything the manager runs: ``run()`` works until cancelled.

    An optional ``needs_leader_election`` attribute (default ``True``, as in
    controller-runtime) says whether it runs only on the leader.
    """

    async def run(self) -> None:
        """Work until cancelled."""


class LeadershipLost(RuntimeError):
    """This replica could not renew its Lease; its leader-only work was stopped."""


def _needs_leader(runnable: Runnable) -> bool:
    return bool(getattr(runnable, "needs_leader_election", True))


@dataclass(frozen=True, kw_only=True)
class ManagerSettings:
    """What the manager runs besides your runnables."""

    leader_election: LeaderElectionSettings | None = None
    """``None`` runs leader-only work at once (one replica, or tests)."""
    health: HealthSettings | None = field(default_factory=HealthSettings)
    """The probe/metrics server; ``None`` runs none."""
    cache_sync_timeout: float = 120.0
    """Start fails if the informer cache has not synced in this time (controller-runtime's
    CacheSyncTimeout default is 2 minutes)."""
    handle_signals: bool = True
    """Stop gracefully on SIGTERM and SIGINT while :meth:`Manager.run` runs."""
    required_access: tuple[Permission, ...] = ()
    """Permissions checked before anything else starts (see the module docstring); empty:
    no check."""
    access_recheck: float = 30.0
    """Seconds between access checks: how soon granted (or revoked) rights are noticed,
    at one SelfSubjectAccessReview per permission each time."""
    drain_delay: float = 0.0
    """Seconds between failing readiness on stop and stopping the webhook servers. 0 for
    local runs; a few seconds in a pod, within its termination grace period."""


class Manager:
    """Owns the shared informer cache and runs runnables in order; see the module docstring."""

    def __init__(
        self,
        client: Client,
        settings: ManagerSettings | None = None,
        *,
        cache: InformerCache | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        """Create a manager for ``client``; add runnables, then :meth:`run`."""
        self.client = client
        self.settings = settings or ManagerSettings()
        self.registry = registry if registry is not None else REGISTRY
        self.cache = cache if cache is not None else InformerCache(client)
        self.health = (
            HealthServer(self.registry, self.settings.health) if self.settings.health else None
        )
        self.elector = (
            LeaderElector(client, self.settings.leader_election)
            if self.settings.leader_election else None
        )
        self._runnables: list[Runnable] = []
        self._stop = asyncio.Event()
        self._synced = False
        self._stopping = False
        self._access_ok = asyncio.Event()
        self.leading = asyncio.Event()
        """Set while this replica runs its leader-only work."""

    def add(self, runnable: Runnable) -> Runnable:
        """Register a runnable (a Controller, a WebhookServer, ...); returns it."""
        self._runnables.append(runnable)
        return runnable

    def add_health_check(self, name: str, check: Callable[[], Awaitable[bool] | bool]) -> None:
        """Add a liveness check to ``/healthz``."""
        if self.health:
            self.health.healthz[name] = check

    def add_ready_check(self, name: str, check: Callable[[], Awaitable[bool] | bool]) -> None:
        """Add a readiness check to ``/readyz``."""
        if self.health:
            self.health.readyz[name] = check

    def stop(self) -> None:
        """Ask :meth:`run` to stop gracefully."""
        self._stop.set()

    async def run(self) -> None:
        """Start everything in order, run until stopped or failed, then stop in reverse order."""
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if self.settings.handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self.stop)
                    installed.append(sig)
        tasks: list[asyncio.Task[Any]] = []
        try:
            if self.health:
                self.add_ready_check("informers", lambda: self._synced)
                self.add_ready_check("shutdown", lambda: not self._stopping)
                self.health.set_reason("informers", "caches not synced yet")
                self.health.set_reason("shutdown", "stopping")
                await self.health.start()
                log.info("probes on %s:%d, metrics on port %d", self.health.settings.host,
                         self.health.port, self.health.metrics_port)
            if self.settings.required_access:
                self.add_ready_check("access", self._access_ok.is_set)
                tasks.append(asyncio.create_task(self._check_access(), name="access-check"))
                await self._until_stopped_or(self._access_ok.wait(), tasks)
            for runnable in self._runnables:
                if not _needs_leader(runnable):
                    tasks.append(asyncio.create_task(runnable.run(), name=repr(runnable)))
            self.cache.start()
            await self._until_stopped_or(
                self.cache.wait_until_synced(self.settings.cache_sync_timeout), tasks
            )
            self._synced = True
            if self.health:
                self.health.set_reason("informers", None)
            leader_work = asyncio.create_task(self._lead(), name="leader-only-work")
            tasks.append(leader_work)
            await self._until_stopped_or(None, tasks)
        except _Stopped:
            log.info("stopping")
        finally:
            await self._shutdown(tasks)
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def _until_stopped_or(
        self, step: Awaitable[Any] | None, tasks: list[asyncio.Task[Any]]
    ) -> None:
        """Wait for ``step`` (or forever), the stop event, or any task failing/ending."""
        stop = asyncio.create_task(self._stop.wait())
        waiting: set[asyncio.Future[Any]] = {stop, *tasks}
        step_task = asyncio.ensure_future(step) if step is not None else None
        if step_task is not None:
            waiting.add(step_task)
        try:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        for task in done:
            if task is stop or task is step_task:
                if task is step_task:
                    task.result()  # a sync timeout raises here
                continue
            exc = task.exception()
            if exc is not None:
                raise exc
        if stop in done:
            raise _Stopped

    async def _check_access(self) -> None:
        """Check ``required_access`` now and every ``access_recheck`` seconds (a task)."""
        required = self.settings.required_access
        last: tuple[Permission, ...] | None = None
        while True:
            try:
                missing = tuple(await missing_access(self.client, required))
            except (ApiError, TransportError, OSError) as exc:
                log.warning("cannot check permissions (%s); retrying in %.0f s", exc,
                            self.settings.access_recheck)
            else:
                if missing != last:
                    if missing:
                        log.error("missing %d of %d required permissions; not starting "
                                  "(or not ready) until they are granted: %s", len(missing),
                                  len(required), "; ".join(str(p) for p in missing))
                    elif last is not None:
                        log.info("all %d required permissions granted", len(required))
                    last = missing
                if missing:
                    self._access_ok.clear()
                    if self.health:
                        self.health.set_reason("access", "missing permissions: " + "; ".join(
                            str(p) for p in missing))
                else:
                    self._access_ok.set()
                    if self.health:
                        self.health.set_reason("access", None)
            await asyncio.sleep(self.settings.access_recheck)

    async def _lead(self) -> None:
        leader_only = [r for r in self._runnables if _needs_leader(r)]

        async def work() -> None:
            self.leading.set()
            running = [asyncio.create_task(r.run(), name=repr(r)) for r in leader_only]
            try:
                if running:
                    done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_EXCEPTION)
                    for task in done:
                        task.result()  # the first failure stops the manager with its error
                await asyncio.Event().wait()  # until cancelled
            finally:
                self.leading.clear()
                for task in running:
                    task.cancel()
                for task in running:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

        if self.elector is None:
            await work()
            return
        if not await self.elector.run(work):
            raise LeadershipLost(
                f"lost the lease {self.elector.settings.namespace}/{self.elector.settings.name}"
            )

    async def _shutdown(self, tasks: list[asyncio.Task[Any]]) -> None:
        # Leader-only work first (its cancellation releases the Lease), then readiness fails,
        # then (after the drain delay) the rest.
        self._stopping = True
        drained = False
        for task in reversed(tasks):
            if not drained and task.get_name() != "leader-only-work":
                drained = True
                if self.settings.drain_delay > 0:
                    log.info("draining for %.1f s before stopping webhooks",
                             self.settings.drain_delay)
                    await asyncio.sleep(self.settings.drain_delay)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.cache.stop()
        if self.health:
            await self.health.stop()


class _Stopped(Exception):
    """Internal: the stop event fired."""
