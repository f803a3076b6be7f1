"""The watcher stage: list, then watch, forever, as one stream of events that survives failures.

Place in the pipeline: first stage. Reads the API server through :class:`kuar.client.Client`;
its events feed :func:`kuar.runtime.reflector.reflector` (which keeps a
:class:`~kuar.runtime.store.Store`) or any consumer. Known as the ``Reflector``'s ``ListAndWatch``
in client-go and ``watcher()`` in kube-rs, whose event vocabulary it uses: ``INIT``,
``INIT_APPLY`` (one per listed object), ``INIT_DONE``, then ``APPLY`` / ``DELETE``.

Guarantees:
- A full list comes in pages (``limit`` = ``page_size``) between ``INIT`` and ``INIT_DONE``;
  then a watch starts from the list's resourceVersion, with bookmarks.
- After a disconnect (server closed the stream, connection lost, API server restarted) the
  watch resumes from the last resourceVersion seen (events or bookmarks): nothing is missed and
  nothing is listed again.
- If that resourceVersion is gone (410, as an HTTP status or as an ``ERROR`` event on an open
  stream), the watcher lists again: ``INIT`` .. ``INIT_DONE`` describe the complete new state,
  so a store swaps it in at once (readers never see a half-done relist).
- A stream that delivers no event and no bookmark for ``inactivity_timeout`` seconds is
  treated as dead and reopened (resuming, as above).
- Failures are retried forever with exponential backoff and jitter (:mod:`kuar.runtime.backoff`);
  a 429 waits at least the server's ``Retry-After``.
- Each object passes through ``transform`` (default: drop ``managedFields``), is compacted
  (interned strings; see :mod:`kuar.runtime.objects`) and then ``decode`` (default: a read-only
  :class:`~kuar.runtime.objects.DynamicObject`). An object that fails either hook is logged,
  counted in ``kuar_decode_errors_total`` and skipped; the stream goes on.
Caveats: the stream never ends on its own; stop it by closing the iterator (``aclose``) or
cancelling its task. Events between two lists may be missed only as intermediate states: the
relist gives the final state of every object. A skipped (undecodable) update leaves the previous
version of that object wherever the consumer keeps it.
Errors: none escape; failures are logged (``kuar.runtime.watcher``) and counted in
``kuar_watch_restarts_total``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar, overload

from prometheus_client import CollectorRegistry

from kuar.client import ApiError, Client, Gone, ResourceInfo, TooManyRequests, TransportError
from kuar.runtime.backoff import Backoff, BackoffSettings
from kuar.runtime.clock import SYSTEM_CLOCK, Clock
from kuar.runtime.metrics import runtime_metrics
from kuar.runtime.objects import (
    DynamicObject,
    ObjectMeta,
    compact,
    dynamic_object,
    strip_managed_fields,
)

log = logging.getLogger("kuar.runtime.watcher")

T = TypeVar("T")
Transform = Callable[[dict[str, Any]], dict[str, Any]]
Decode = Callable[[dict[str, Any]], T]


class EventType(enum.Enum):
    """What a :class:`WatchEvent` says (kube-rs ``watcher::Event`` names)."""

    INIT = "Init"
    """A full list starts; the objects that follow replace everything known before."""
    INIT_APPLY = "InitApply"
    """One object of the full list."""
    INIT_DONE = "InitDone"
    """The full list is complete (``resource_version`` is the list's)."""
    APPLY = "Apply"
    """An object was added or changed."""
    DELETE = "Delete"
    """An object was deleted (``object`` is its last state)."""


class WatchEvent(NamedTuple, Generic[T]):
    """One event of the watcher stream."""

    type: EventType
    object: T | None
    """The decoded object; ``None`` for ``INIT``/``INIT_DONE`` (and for a ``DELETE`` whose
    object could not be decoded: ``meta`` still names it)."""
    meta: ObjectMeta | None
    """The object's metadata as a read-only view (present whenever an object is)."""
    resource_version: str
    """The object's resourceVersion, or the list's for ``INIT_DONE``."""


@dataclass(frozen=True, kw_only=True)
class WatcherSettings:
    """How the watcher talks to the API server."""

    page_size: int = 500
    """Objects per list page: client-go's pager default; bounds the memory of one response
    and keeps each request short, at ~4 round trips per 2,000 objects."""
    watch_timeout: float = 300.0
    """Ask the server to end each watch after 300..600 s (randomised, like client-go), so
    connections are renewed and load spreads over API server replicas."""
    inactivity_timeout: float = 90.0
    """No event and no bookmark for this long means the stream is dead: reopen it. The API
    server's watch cache sends a bookmark about every 60 s, so 90 s does not fire on a healthy
    quiet stream; without bookmarks a false alarm costs only one cheap resumed watch."""
    bookmarks: bool = True
    """Ask for bookmarks: they advance the resourceVersion on quiet streams, so a resume
    after a disconnect rarely needs a full relist."""
    short_watch: float = 1.0
    """A watch the server closes within this many seconds without any event counts as a
    failure (backoff), so a misbehaving proxy cannot make the watcher spin."""
    compact: bool = True
    """Intern keys and short strings of each object (about half the memory per cached
    object; docs/decisions/0003-cache-format.md)."""
    backoff: BackoffSettings = field(default_factory=BackoffSettings)
    """Waits between failed attempts (0.8 s doubling to 30 s, with jitter)."""


class _WatchFailed(Exception):
    """An ``ERROR`` event other than 410 arrived on an open stream."""


@overload
def watcher(
    client: Client,
    resource: ResourceInfo,
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    transform: Transform | None = strip_managed_fields,
    decode: None = None,
    settings: WatcherSettings | None = None,
    clock: Clock = SYSTEM_CLOCK,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[WatchEvent[DynamicObject]]: ...
@overload
def watcher(
    client: Client,
    resource: ResourceInfo,
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    transform: Transform | None = strip_managed_fields,
    decode: Decode[T],
    settings: WatcherSettings | None = None,
    clock: Clock = SYSTEM_CLOCK,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[WatchEvent[T]]: ...
def watcher(
    client: Client,
    resource: ResourceInfo,
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    transform: Transform | None = strip_managed_fields,
    decode: Decode[Any] | None = None,
    settings: WatcherSettings | None = None,
    clock: Clock = SYSTEM_CLOCK,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[WatchEvent[Any]]:
    """List and watch ``resource`` (in ``namespace``, or all namespaces when ``None``).

    Selectors use the API server's syntax (``"app=web,tier!=db"``,
    ``"metadata.name=x"``). See the module docstring for the guarantees.
    """
    return _Watcher(
        client, resource, namespace, label_selector, field_selector, transform,
        decode or dynamic_object, settings or WatcherSettings(), clock, registry,
    ).run()


class _Watcher(Generic[T]):
    def __init__(
        self,
        client: Client,
        resource: ResourceInfo,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        transform: Transform | None,
        decode: Decode[T],
        settings: WatcherSettings,
        clock: Clock,
        registry: CollectorRegistry | None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.path = resource.path(namespace if resource.namespaced else None)
        self.selectors: dict[str, str] = {}
        if label_selector:
            self.selectors["labelSelector"] = label_selector
        if field_selector:
            self.selectors["fieldSelector"] = field_selector
        self.transform = transform
        self.decode = decode
        self.settings = settings
        self.clock = clock
        self.backoff = Backoff(settings.backoff, clock=clock)
        self.label = f"{resource.plural}.{resource.group}" if resource.group else resource.plural
        m = runtime_metrics(registry)
        self.m_events = {
            t: m.watch_events.labels(self.label, t) for t in ("ADDED", "MODIFIED", "DELETED")
        }
        self.m_restarts = m.watch_restarts
        self.m_relists = m.watch_relists.labels(self.label)
        self.m_decode_errors = m.decode_errors.labels(self.label)

    # --- objects -------------------------------------------------------------------------
    def _prepare(self, raw: Any, event_type: EventType) -> WatchEvent[T] | None:
        """Transform -> compact -> decode one object; ``None`` (logged, counted) if it fails."""
        meta_raw = raw.get("metadata") if type(raw) is dict else None
        if type(meta_raw) is not dict:
            self.m_decode_errors.inc()
            log.error("skipping %s without metadata: %.200r", self.label, raw)
            return None
        try:
            if self.transform is not None:
                raw = self.transform(raw)
            if self.settings.compact:
                raw = compact(raw)
            meta = ObjectMeta(raw["metadata"])
        except Exception:
            self.m_decode_errors.inc()
            log.exception("transform failed for %s %s; skipped", self.label, _describe(meta_raw))
            return None
        try:
            obj: T | None = self.decode(raw)
        except Exception as exc:
            self.m_decode_errors.inc()
            log.error(
                "cannot decode %s %s (skipped): %s", self.label, _describe(meta_raw), exc,
                extra={"resource": self.label, "key": _describe(meta_raw)},
            )
            if event_type is not EventType.DELETE:
                return None
            obj = None  # a delete must still reach the store, or it keeps a ghost
        return WatchEvent(event_type, obj, meta, meta.resource_version)

    # --- list ----------------------------------------------------------------------------
    async def _list(self) -> AsyncIterator[WatchEvent[T]]:
        """One full list in pages: INIT, INIT_APPLY..., INIT_DONE."""
        self.m_relists.inc()
        yield WatchEvent(EventType.INIT, None, None, "")
        params: dict[str, str | int] = {**self.selectors, "limit": self.settings.page_size}
        api_version, kind = self.resource.api_version, self.resource.kind
        while True:
            try:
                page = await self.client.request("GET", self.path, params=params)
            except Gone:
                if "continue" not in params:
                    raise
                # The continue token expired (compaction during a long list): list again,
                # in one request, as client-go's pager does.
                log.info("list continue token of %s expired; listing without pages", self.label)
                params = dict(self.selectors)
                yield WatchEvent(EventType.INIT, None, None, "")
                continue
            for item in page.get("items") or ():
                # List items of built-in kinds come without apiVersion/kind.
                if type(item) is dict:
                    item.setdefault("apiVersion", api_version)
                    item.setdefault("kind", kind)
                event = self._prepare(item, EventType.INIT_APPLY)
                if event is not None:
                    yield event
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                yield WatchEvent(EventType.INIT_DONE, None, None, str(meta["resourceVersion"]))
                return
            params["continue"] = token

    # --- the loop ------------------------------------------------------------------------
    async def run(self) -> AsyncIterator[WatchEvent[T]]:
        rv = ""
        need_list = True
        while True:
            try:
                if need_list or not rv:
                    async for event in self._list():
                        if event.type is EventType.INIT_DONE:
                            rv = event.resource_version
                        yield event
                    need_list = False
                started = self.clock.monotonic()
                received = 0
                reason = "closed"
                params: dict[str, str | int] = {
                    **self.selectors,
                    "watch": "1",
                    "resourceVersion": rv,
                    "timeoutSeconds": int(self.settings.watch_timeout * (1 + random.random())),  # noqa: S311
                }
                if self.settings.bookmarks:
                    params["allowWatchBookmarks"] = "true"
                stream = self.client.stream(self.path, params=params)
                try:
                    while True:
                        try:
                            async with asyncio.timeout(self.settings.inactivity_timeout):
                                line = await anext(stream)
                        except StopAsyncIteration:
                            break
                        except TimeoutError:
                            reason = "inactive"
                            log.warning(
                                "watch of %s silent for %.0f s; reopening", self.label,
                                self.settings.inactivity_timeout,
                            )
                            break
                        received += 1
                        kind = line.get("type")
                        obj = line.get("object")
                        if kind == "BOOKMARK":
                            bookmark = (obj or {}).get("metadata") or {}
                            rv = str(bookmark.get("resourceVersion") or rv)
                            continue
                        if kind == "ERROR":
                            status = obj if isinstance(obj, dict) else {}
                            if status.get("code") == 410:
                                reason = "gone"
                                need_list = True
                                log.info(
                                    "watch of %s from resourceVersion %s is too old (410); "
                                    "relisting", self.label, rv,
                                )
                                break
                            raise _WatchFailed(f"watch error: {status.get('message') or status}")
                        counter = self.m_events.get(str(kind))
                        if counter is None:
                            log.warning("unknown watch event type %r for %s", kind, self.label)
                            continue
                        counter.inc()
                        meta_raw = obj.get("metadata") if type(obj) is dict else None
                        new_rv = meta_raw.get("resourceVersion") if type(meta_raw) is dict else None
                        change = self._prepare(
                            obj, EventType.DELETE if kind == "DELETED" else EventType.APPLY
                        )
                        if new_rv:
                            rv = str(new_rv)
                        if change is not None:
                            yield change
                finally:
                    await _close(stream)
                if (
                    reason == "closed"
                    and received == 0
                    and self.clock.monotonic() - started < self.settings.short_watch
                ):
                    raise _WatchFailed("the server closed the watch at once, without events")
                self.m_restarts.labels(self.label, reason).inc()
            except Gone:
                self.m_restarts.labels(self.label, "gone").inc()
                log.info("resourceVersion %s of %s is gone (410); relisting", rv, self.label)
                need_list = True
            except TooManyRequests as exc:
                self.m_restarts.labels(self.label, "throttled").inc()
                # Honour the server's Retry-After; without one, back off as for any failure.
                if exc.retry_after is not None and exc.retry_after > 0:
                    delay = exc.retry_after
                else:
                    delay = self.backoff.next_delay()
                log.warning("%s: throttled (429); retrying in %.2f s", self.label, delay)
                await self.clock.sleep(delay)
            except (ApiError, TransportError, _WatchFailed) as exc:
                self.m_restarts.labels(self.label, "error").inc()
                delay = self.backoff.next_delay()
                log.warning("%s: %s; retrying in %.2f s", self.label, exc, delay)
                await self.clock.sleep(delay)


async def _close(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def _describe(meta: dict[str, Any]) -> str:
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))
