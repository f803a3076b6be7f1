"""Lease-based leader election (coordination.k8s.io/v1), as client-go's leaderelection does it.

Place in the pipeline: run by :class:`kuar.manager.Manager` before it starts leader-only
runnables (controllers); usable alone. Known as ``leaderelection.LeaderElector`` in client-go.

Guarantees:
- At most one holder at a time, assuming clocks run at the same rate (not that they agree):
  a candidate takes a Lease only when it has seen the Lease record unchanged for
  ``lease_duration`` seconds of its own clock, or when the holder released it.
- A leader that cannot renew for ``renew_deadline`` seconds (shorter than ``lease_duration``)
  gives up leadership: ``on_stopped_leading`` runs, and the leader-only work is stopped
  before another candidate could take the Lease.
- On a graceful stop the leader releases the Lease (empty holder, 1 s duration). Standbys
  watch the Lease besides retrying every ``retry_period``, so one takes over as soon as it
  sees the release instead of waiting out the lease.
Caveats: a process that is paused (SIGSTOP, a long GC) longer than ``renew_deadline`` may act
as leader until it notices; fencing needs the work itself to be idempotent, as reconcilers are.
Errors: API errors while acquiring or renewing are retried every ``retry_period``; they are
logged, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from kuar.client import Api, ApiError, Client, Conflict, NotFound, TransportError
from kuar.models.coordination.v1 import Lease, LeaseSpec
from kuar.resources import ObjectMeta

log = logging.getLogger("kuar.manager.leader")


def default_identity() -> str:
    """``<hostname>_<random>``, as controller-runtime does, so restarts get a new identity."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass(frozen=True, kw_only=True)
class LeaderElectionSettings:
    """Where the Lease lives and how long leadership lasts (controller-runtime's defaults)."""

    name: str
    """Lease name, shared by every replica of one operator."""
    namespace: str = "default"
    """Namespace of the Lease (the operator's own, in a cluster)."""
    identity: str = field(default_factory=default_identity)
    """This candidate's holder identity."""
    lease_duration: float = 15.0
    """How long a non-leader waits, after the last renewal it saw, before taking over."""
    renew_deadline: float = 10.0
    """How long the leader keeps trying to renew before giving up; < lease_duration."""
    retry_period: float = 2.0
    """Time between attempts to acquire or renew."""
    release_on_cancel: bool = True
    """Release the Lease on a graceful stop, so a standby takes over at once."""

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry_period < renew_deadline < lease_duration"
            )


class LeaderElector:
    """Campaigns for a Lease; call :meth:`run` with the work to do while leading."""

    def __init__(self, client: Client, settings: LeaderElectionSettings) -> None:
        """Prepare a candidate; nothing happens until :meth:`run`."""
        self.client = client
        self.settings = settings
        self.leases = Api(client, Lease, namespace=settings.namespace,
                          field_manager="kuar-leader-election")
        self._observed: Lease | None = None
        self._observed_at = 0.0
        self.is_leader = False

    def _spec(self, *, acquire: bool, previous: LeaseSpec) -> LeaseSpec:
        # MicroTime fields: aware datetimes, written back with six fractional digits.
        now = dt.datetime.now(dt.UTC)
        transitions = previous.lease_transitions or 0
        if acquire and previous.holder_identity != self.settings.identity:
            transitions += 1
        return LeaseSpec(
            holder_identity=self.settings.identity,
            lease_duration_seconds=max(1, round(self.settings.lease_duration)),
            acquire_time=now if acquire else (previous.acquire_time or now),
            renew_time=now,
            lease_transitions=transitions,
        )

    async def try_acquire_or_renew(self) -> bool:
        """One attempt (client-go's ``tryAcquireOrRenew``); True if we hold the Lease now."""
        loop = asyncio.get_running_loop()
        s = self.settings
        try:
            lease = await self.leases.get(s.name)
        except NotFound:
            new = Lease(metadata=ObjectMeta(name=s.name, namespace=s.namespace),
                        spec=self._spec(acquire=True, previous=LeaseSpec()))
            try:
                created = await self.leases.create(new)
            except Conflict:  # someone else created it first
                return False
            self._observe(created, loop.time())
            return True
        spec = lease.spec or LeaseSpec()
        if self._observed is None or spec != (self._observed.spec or LeaseSpec()):
            self._observe(lease, loop.time())
        holder = spec.holder_identity or ""
        ours = holder == s.identity
        duration = float(spec.lease_duration_seconds or s.lease_duration)
        expired = self._observed_at + duration <= loop.time()
        if holder and not ours and not expired:
            return False
        lease.spec = self._spec(acquire=not ours, previous=spec)
        try:
            updated = await self.leases.replace(lease)
        except Conflict:  # someone renewed or took it between our read and write
            return False
        self._observe(updated, loop.time())
        return True

    def _observe(self, lease: Lease, at: float) -> None:
        self._observed = lease
        self._observed_at = at

    async def release(self) -> None:
        """Give the Lease up if we hold it (empty holder, 1 s duration)."""
        if self._observed is None:
            return
        lease = self._observed.model_copy(deep=True)
        if lease.spec is None or lease.spec.holder_identity != self.settings.identity:
            return
        now = dt.datetime.now(dt.UTC)
        lease.spec = lease.spec.model_copy(update={
            "holder_identity": "", "lease_duration_seconds": 1, "renew_time": now,
            "acquire_time": now})
        with contextlib.suppress(ApiError, TransportError):
            await self.leases.replace(lease)
            log.info("released lease %s/%s", self.settings.namespace, self.settings.name)

    async def _watch_lease(self, changed: asyncio.Event) -> None:
        """Set ``changed`` on every change of the Lease, so a release is seen at once."""
        s = self.settings
        while True:
            try:
                rv = self._observed.metadata.resource_version if self._observed else None
                async for _event in self.leases.watch(
                    resource_version=rv, field_selector=f"metadata.name={s.name}",
                    timeout_seconds=60,
                ):
                    changed.set()
            except (ApiError, TransportError, OSError):
                pass
            await asyncio.sleep(s.retry_period)

    async def _acquire(self) -> None:
        # Besides retrying every retry_period (as client-go does), a standby watches the Lease
        # and retries as soon as it changes: a released Lease is taken over in milliseconds.
        changed = asyncio.Event()
        watch = asyncio.create_task(self._watch_lease(changed), name="leader-watch")
        try:
            while True:
                changed.clear()
                try:
                    if await self.try_acquire_or_renew():
                        return
                except (ApiError, TransportError, OSError) as exc:
                    log.warning("acquiring lease %s failed: %s", self.settings.name, exc)
                # asyncio.timeout, not wait_for, here and below: on Python 3.11 wait_for loses a
                # cancellation that arrives as the awaited thing completes
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.retry_period):
                        await changed.wait()
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    async def _renew_until_lost(self) -> None:
        loop = asyncio.get_running_loop()
        s = self.settings
        last_renew = loop.time()
        while True:
            await asyncio.sleep(s.retry_period)
            try:
                remaining = max(0.0, last_renew + s.renew_deadline - loop.time())
                async with asyncio.timeout(remaining):
                    renewed = await self.try_acquire_or_renew()
                if renewed:
                    last_renew = loop.time()
                    continue
                log.warning("lease %s was taken by another candidate", s.name)
                return
            except (ApiError, TransportError, OSError, TimeoutError) as exc:
                log.warning("renewing lease %s failed: %s", s.name, exc)
            if loop.time() - last_renew >= s.renew_deadline:
                log.error("could not renew lease %s for %.0f s: leadership lost",
                          s.name, s.renew_deadline)
                return

    async def run(
        self,
        on_started_leading: Callable[[], Coroutine[Any, Any, None]],
        on_stopped_leading: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """Acquire, then run ``on_started_leading`` while renewing.

        Returns ``False`` when leadership was lost (the leading work was cancelled first) and
        ``True`` when the work finished by itself. Cancelling :meth:`run` stops the work and
        releases the Lease (if ``release_on_cancel``).
        """
        await self._acquire()
        self.is_leader = True
        log.info("became leader of lease %s/%s as %s", self.settings.namespace,
                 self.settings.name, self.settings.identity)
        work: asyncio.Task[None] = asyncio.create_task(on_started_leading(), name="leader-work")
        renew = asyncio.create_task(self._renew_until_lost(), name="leader-renew")
        try:
            done, _ = await asyncio.wait({work, renew}, return_when=asyncio.FIRST_COMPLETED)
            lost = renew in done
        except asyncio.CancelledError:
            lost = False
            await self._stop(work, renew)
            if self.settings.release_on_cancel:
                await self.release()
            raise
        await self._stop(work, renew)
        if not lost and self.settings.release_on_cancel:
            await self.release()
        if lost and on_stopped_leading is not None:
            await on_stopped_leading()
        if not lost:
            work.result()  # re-raise the work's own exception, if any
        return not lost

    async def _stop(self, *tasks: asyncio.Task[Any]) -> None:
        self.is_leader = False
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def pod_namespace(default: str = "default") -> str:
    """The namespace of the pod this process runs in (service-account file), else ``default``."""
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip() or default
    return default
