"""Informers: a running watcher + store + fan-out to handlers, shared by every controller.

Place in the pipeline: owns one :func:`~kuar.runtime.watcher.watcher` ->
:func:`~kuar.runtime.reflector.reflector` chain and calls each registered handler with every
:class:`~kuar.runtime.store.Change`; controllers register handlers that enqueue requests and
read :attr:`Informer.store` in their reconcilers. Known as ``SharedIndexInformer`` /
``SharedInformerFactory`` in client-go and the ``cache.Cache`` in controller-runtime.

Guarantees:
- :class:`InformerCache` makes one informer, hence one watch and one store, per resource and
  :class:`~kuar.runtime.watcher.WatchConfig` (namespace, selectors, paging, transform); every
  caller asking for the same pair gets the same informer.
- A handler added after objects are already cached first receives an ``added`` change for
  each of them, then live changes, so late handlers miss nothing.
- Handlers run in the informer's task, in registration order, synchronously: keep them cheap
  (enqueue a key). A handler that raises is logged and does not stop the informer or the other
  handlers.
- An informer whose stream breaks unexpectedly (a bug, a malformed answer) logs it and starts
  over with a fresh list after a backoff, instead of leaving a stale store behind.
Caveats: informers cannot be removed while the cache runs (stop the whole cache).
Errors: :meth:`InformerCache.informer` raises ``ValueError`` when the same informer is asked
for with a different ``decode`` hook.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar, overload

from prometheus_client import CollectorRegistry

from kuar.base.clock import SYSTEM_CLOCK, Clock
from kuar.client import Client, ResourceInfo
from kuar.resources import Resource
from kuar.runtime.backoff import Backoff
from kuar.runtime.objects import ObjectView
from kuar.runtime.reflector import reflector
from kuar.runtime.store import Change, Store
from kuar.runtime.watcher import (
    Decode,
    WatchConfig,
    WatcherSettings,
    WatchEvent,
    resolve_resource,
    watcher,
)

log = logging.getLogger("kuar.runtime.informer")

T = TypeVar("T")
R = TypeVar("R", bound=Resource)
Handler = Callable[[Change[T]], None]

InformerKey = tuple[ResourceInfo, WatchConfig]


class Informer(Generic[T]):
    """One kind (and scope) of object, watched into a :class:`Store`, with change handlers."""

    def __init__(
        self,
        client: Client,
        resource: ResourceInfo,
        config: WatchConfig,
        *,
        decode: Decode[T],
        settings: WatcherSettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
        registry: CollectorRegistry | None = None,
    ) -> None:
        """An informer (nothing runs until :meth:`start`)."""
        self.client = client
        self.resource = resource
        self.config = config.scoped(resource)
        self.decode = decode
        self.settings = settings or WatcherSettings()
        self.clock = clock
        self.registry = registry
        self.store: Store[T] = Store()
        self._handlers: list[Handler[T]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def namespace(self) -> str | None:
        """The namespace watched (``None``: all)."""
        return self.config.namespace

    def __repr__(self) -> str:
        scope = self.namespace or "all namespaces"
        return f"Informer({self.resource.kind}.{self.resource.group or 'core'}, {scope})"

    @property
    def running(self) -> bool:
        """Whether the informer's task is running."""
        return self._task is not None and not self._task.done()

    def add_handler(self, handler: Handler[T]) -> Callable[[], None]:
        """Call ``handler`` for every change; returns a function that removes it."""
        for key, entry in list(self.store._items.items()):
            self._call(handler, Change(key, None, entry))
        self._handlers.append(handler)

        def remove() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return remove

    def _call(self, handler: Handler[T], change: Change[T]) -> None:
        try:
            handler(change)
        except Exception:
            log.exception("event handler %r failed on %s %s", handler, change.type, change.key)

    def start(self) -> None:
        """Start watching in a background task (no-op when already running)."""
        if self.running:
            return
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"informer-{self.resource.plural}"
        )

    async def _run(self) -> None:
        backoff = Backoff(self.settings.backoff, clock=self.clock)
        while True:
            events = watcher(
                self.client, self.resource, self.config, decode=self.decode,
                settings=self.settings, clock=self.clock, registry=self.registry,
            )
            try:
                await self._fan_out(events)
            except Exception:
                # The watcher retries API failures itself; this is a bug or a malformed answer
                # (e.g. a list without a resourceVersion). Start over with a fresh list, which
                # the store diffs against what it holds.
                delay = backoff.next_delay()
                log.exception("informer %r failed; restarting in %.1f s", self, delay)
                await self.clock.sleep(delay)

    async def _fan_out(self, events: AsyncIterator[WatchEvent[T]]) -> None:
        handlers = self._handlers
        async for change in reflector(self.store, events):
            for handler in handlers:
                try:
                    handler(change)
                except Exception:
                    log.exception(
                        "event handler %r failed on %s %s", handler, change.type, change.key
                    )

    async def stop(self) -> None:
        """Stop watching (the store keeps its last state)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
            self._task = None

    async def wait_until_synced(self, timeout: float | None = None) -> None:
        """Wait until the store holds the first full list (``TimeoutError`` after ``timeout``)."""
        await self.store.wait_until_synced(timeout)


class InformerCache:
    """The process-wide set of informers, one per kind and scope (see the module docstring)."""

    def __init__(
        self,
        client: Client,
        *,
        settings: WatcherSettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
        registry: CollectorRegistry | None = None,
    ) -> None:
        """A cache whose informers use ``client`` and ``settings``."""
        self.client = client
        self.settings = settings or WatcherSettings()
        self.clock = clock
        self.registry = registry
        self._informers: dict[InformerKey, Informer[Any]] = {}
        self._started = False

    @overload
    def informer(
        self, resource: type[R], config: WatchConfig | None = None, *, decode: None = None
    ) -> Informer[R]: ...
    @overload
    def informer(
        self, resource: ResourceInfo, config: WatchConfig | None = None, *, decode: None = None
    ) -> Informer[ObjectView]: ...
    @overload
    def informer(
        self, resource: ResourceInfo | type[Resource], config: WatchConfig | None = None, *,
        decode: Decode[T],
    ) -> Informer[T]: ...
    def informer(
        self,
        resource: ResourceInfo | type[Resource],
        config: WatchConfig | None = None,
        *,
        decode: Decode[Any] | None = None,
    ) -> Informer[Any]:
        """The informer for this kind and ``config``, made (and started, if the cache runs) once.

        A typed class (``Job``, ``LoadTest``) gives a store of typed objects; a
        :class:`ResourceInfo` gives read-only views, or whatever ``decode`` makes.
        """
        info, wanted = resolve_resource(resource, decode)
        config = (config or WatchConfig()).scoped(info)
        key: InformerKey = (info, config)
        found = self._informers.get(key)
        if found is not None:
            if found.decode != wanted:
                raise ValueError(
                    f"{found!r} already exists with decode={found.decode!r}; "
                    f"cannot share it with decode={wanted!r}"
                )
            return found
        informer: Informer[Any] = Informer(
            self.client, info, config, decode=wanted, settings=self.settings,
            clock=self.clock, registry=self.registry,
        )
        self._informers[key] = informer
        if self._started:
            informer.start()
        return informer

    @property
    def informers(self) -> list[Informer[Any]]:
        """Every informer made so far."""
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer, and start later ones as soon as they are made."""
        self._started = True
        for informer in self._informers.values():
            informer.start()

    async def stop(self) -> None:
        """Stop every informer."""
        self._started = False
        await asyncio.gather(*(i.stop() for i in self._informers.values()))

    async def wait_until_synced(self, timeout: float | None = None) -> None:
        """Wait until every informer's store is synced (``TimeoutError`` after ``timeout``)."""
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(i.wait_until_synced() for i in self._informers.values()))

    async def __aenter__(self) -> InformerCache:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
