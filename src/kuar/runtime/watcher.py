"""The watcher stage: list, then watch, forever, as one stream of events that survives failures.

Place in the pipeline: first stage. Reads the API server through :class:`kuar.client.Client`;
its events feed :func:`kuar.runtime.reflector.reflector` (which keeps a
:class:`~kuar.runtime.store.Store`) or any consumer. Known as the ``Reflector``'s ``ListAndWatch``
in client-go and ``watcher()`` in kube-rs, whose event vocabulary it uses: ``INIT``,
``INIT_APPLY`` (one per listed object), ``INIT_DONE``, then ``APPLY`` / ``DELETE``.

What to watch is one :class:`WatchConfig` (namespace, selectors, page size, bookmarks,
transform); how to keep the connection healthy is :class:`WatcherSettings`. The watcher is an
explicit state machine, as kube-rs writes it: *listing* (a full list) -> *watching* from a
resourceVersion -> *watching* again from the last one seen, or *listing* after a 410, with
*waiting* (backoff, separate from the states' logic) after a failure.

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
  (interned strings and, for the default views, shared-key records; see
  :mod:`kuar.runtime.objects`) and then ``decode`` (default: a read-only
  :class:`~kuar.runtime.objects.ObjectView`). An object that fails either hook is logged,
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
import contextlib
import enum
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, NamedTuple, TypeVar, overload

from prometheus_client import CollectorRegistry

from kuar.base.clock import SYSTEM_CLOCK, Clock
from kuar.client import (
    Api,
    ApiError,
    Client,
    Gone,
    ResourceInfo,
    TooManyRequests,
    TransportError,
)
from kuar.resources import DynamicObject, Resource
from kuar.runtime.backoff import Backoff, BackoffSettings
from kuar.runtime.metrics import runtime_metrics
from kuar.runtime.objects import (
    MetaView,
    ObjectView,
    Record,
    compact,
    object_view,
    pack,
    pack_metadata,
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
    meta: MetaView | None
    """The object's metadata as a read-only view (present whenever an object is)."""
    resource_version: str
    """The object's resourceVersion, or the list's for ``INIT_DONE``."""


@dataclass(frozen=True, kw_only=True)
class WatchConfig:
    """What to watch: scope, selectors, paging, bookmarks and the per-object transform.

    One value instead of the same keywords on every stage: :func:`watcher`,
    :meth:`InformerCache.informer <kuar.runtime.informer.InformerCache.informer>` and the
    builder take it. Known as ``watcher::Config`` in kube-rs and ``ListOptions`` plus
    ``cache.ByObject`` in client-go / controller-runtime.
    """

    namespace: str | None = None
    """Watch one namespace; ``None`` watches all (ignored for cluster-scoped kinds)."""
    label_selector: str | None = None
    """The API server's label selector syntax (``"app=web,tier!=db"``)."""
    field_selector: str | None = None
    """The API server's field selector syntax (``"metadata.name=x"``)."""
    page_size: int = 500
    """Objects per list page: client-go's pager default; bounds the memory of one response
    and keeps each request short, at ~4 round trips per 2,000 objects."""
    bookmarks: bool = True
    """Ask for bookmarks: they advance the resourceVersion on quiet streams, so a resume
    after a disconnect rarely needs a full relist."""
    transform: Transform | None = strip_managed_fields
    """Applied to every raw object before it is compacted and decoded (controller-runtime's
    ``TransformFunc``); the default drops ``managedFields``, which nothing reads from a cache."""

    def scoped(self, resource: ResourceInfo) -> WatchConfig:
        """This config with ``namespace`` cleared when ``resource`` is cluster-scoped."""
        if self.namespace is not None and not resource.namespaced:
            return replace(self, namespace=None)
        return self


@dataclass(frozen=True, kw_only=True)
class WatcherSettings:
    """How the watcher keeps its connection healthy (timeouts, backoff, compaction)."""

    watch_timeout: float = 300.0
    """Ask the server to end each watch after 300..600 s (randomised, like client-go), so
    connections are renewed and load spreads over API server replicas."""
    inactivity_timeout: float = 90.0
    """No event and no bookmark for this long means the stream is dead: reopen it. The API
    server's watch cache sends a bookmark about every 60 s, so 90 s does not fire on a healthy
    quiet stream; without bookmarks a false alarm costs only one cheap resumed watch."""
    short_watch: float = 1.0
    """A watch the server closes within this many seconds without any event counts as a
    failure (backoff), so a misbehaving proxy cannot make the watcher spin."""
    compact: bool = True
    """Intern keys and short strings of each object (about half the memory per cached
    object; docs/decisions/0003-cache-format.md)."""
    records: bool = True
    """With ``compact``, also keep every JSON object whose key set repeats as a
    :class:`~kuar.runtime.Record` (a tuple behind a shared key table) instead of a
    dict: about a third less memory again per cached view, and for typed objects the
    metadata kept beside them (docs/decisions/0022-memory-footprint.md). Views read both forms
    alike; ``False`` keeps interned dicts."""
    backoff: BackoffSettings = field(default_factory=BackoffSettings)
    """Waits between failed attempts (0.8 s doubling to 30 s, with jitter)."""


class _WatchFailed(Exception):
    """An ``ERROR`` event other than 410 arrived on an open stream."""


# --- the states (kube-rs ``watcher::State``) -------------------------------------------------
@dataclass(frozen=True)
class _Listing:
    """List everything again: the next events are INIT .. INIT_DONE."""


@dataclass(frozen=True)
class _Watching:
    """Watch from ``resource_version`` (the last one seen: an event, a bookmark or a list)."""

    resource_version: str


@dataclass(frozen=True)
class _Waiting:
    """Sleep ``seconds`` after a failure, then go on with ``then``."""

    seconds: float
    then: _Listing | _Watching


_State = _Listing | _Watching | _Waiting


@dataclass
class _Step:
    """Where a step leaves the machine: updated as the step goes, so a failure keeps it."""

    next: _Listing | _Watching
    reason: str = "closed"


R = TypeVar("R", bound=Resource)


@overload
def watcher(
    client: Client,
    resource: type[R],
    config: WatchConfig | None = None,
    *,
    decode: None = None,
    settings: WatcherSettings | None = None,
    clock: Clock = SYSTEM_CLOCK,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[WatchEvent[R]]: ...
@overload
def watcher(
    client: Client,
    resource: ResourceInfo,
    config: WatchConfig | None = None,
    *,
    decode: None = None,
    settings: WatcherSettings | None = None,
    clock: Clock = SYSTEM_CLOCK,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[WatchEvent[ObjectView]]: ...
@overload
def watcher(
    client: Client,
    resource: ResourceInfo | type[Resource],
    config: WatchConfig | None = None,
    *,
    decode: Decode[T],
    settings: WatcherSettings | None = None,
    clock: Clock = SYSTEM_CLOCK,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[WatchEvent[T]]: ...
def watcher(
    client: Client,
    resource: ResourceInfo | type[Resource],
    config: WatchConfig | None = None,
    *,
    decode: Decode[Any] | None = None,
    settings: WatcherSettings | None = None,
    clock: Clock = SYSTEM_CLOCK,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[WatchEvent[Any]]:
    """List and watch ``resource`` as ``config`` says (all namespaces by default).

    ``resource`` is a typed class (``Job``, ``LoadTest``: objects are decoded into it) or a
    :class:`ResourceInfo` (objects are read-only views, or whatever ``decode`` makes). See the
    module docstring for the guarantees.
    """
    info, decode = resolve_resource(resource, decode)
    return _Watcher(
        client, info, (config or WatchConfig()).scoped(info), decode,
        settings or WatcherSettings(), clock, registry,
    ).run()


def resolve_resource(
    resource: ResourceInfo | type[Resource], decode: Decode[Any] | None
) -> tuple[ResourceInfo, Decode[Any]]:
    """The resource info and decode hook of a typed class, or of an info plus ``decode``."""
    if isinstance(resource, ResourceInfo):
        return resource, decode or object_view
    return resource.resource_info(), decode or resource.decode


class _Watcher(Generic[T]):
    def __init__(
        self,
        client: Client,
        resource: ResourceInfo,
        config: WatchConfig,
        decode: Decode[T],
        settings: WatcherSettings,
        clock: Clock,
        registry: CollectorRegistry | None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.config = config
        self.path = resource.path(config.namespace)
        # Pages come raw: objects are transformed and compacted before they are decoded.
        self.pages = Api(client, DynamicObject, resource=resource, namespace=config.namespace)
        self.selectors: dict[str, str] = {}
        if config.label_selector:
            self.selectors["labelSelector"] = config.label_selector
        if config.field_selector:
            self.selectors["fieldSelector"] = config.field_selector
        self.decode = decode
        self.settings = settings
        # The stored form (docs/decisions/0022-memory-footprint.md): records for the default
        # views; for typed objects interned dicts to decode from, then records for the
        # metadata kept beside them; for any other decode hook interned dicts (it may keep
        # the dicts it is given).
        records = settings.compact and settings.records
        self.store_form: Callable[[Any], Any] = (
            (pack if records and decode is object_view else compact) if settings.compact
            else _unchanged
        )
        self.pack_metadata = records and _is_typed_decode(decode)
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
            if self.config.transform is not None:
                raw = self.config.transform(raw)
            raw = self.store_form(raw)
            meta_data = raw.get("metadata")
            if type(meta_data) is not dict and type(meta_data) is not Record:
                raise ValueError("the transformed object has no metadata")
            meta = MetaView(meta_data)
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
        if self.pack_metadata:
            # The typed object holds its own copy of everything; the metadata the store keeps
            # beside it for keys and indexes goes to the compact form too.
            meta = MetaView(pack_metadata(meta._data))
        return WatchEvent(event_type, obj, meta, meta.resource_version)

    # --- the machine ---------------------------------------------------------------------
    async def run(self) -> AsyncIterator[WatchEvent[T]]:
        """Run the states forever: listing -> watching (resumed) -> ... with waits on failure."""
        state: _State = _Listing()
        while True:
            if isinstance(state, _Waiting):
                await self.clock.sleep(state.seconds)
                state = state.then
                continue
            step = _Step(next=state)
            steps: AsyncGenerator[WatchEvent[T]] = (
                self._list(step) if isinstance(state, _Listing)
                else self._watch(state.resource_version, step)
            )
            try:
                async with contextlib.aclosing(steps):  # a closed watcher closes its stream now
                    async for event in steps:
                        yield event
                state = step.next
            except (Gone, TooManyRequests, ApiError, TransportError, _WatchFailed) as exc:
                state = self._after_failure(exc, step.next)

    def _after_failure(self, exc: Exception, resume: _Listing | _Watching) -> _State:
        """The state after a failed step: relist on 410, else wait and resume where it was."""
        if isinstance(exc, Gone):
            self.m_restarts.labels(self.label, "gone").inc()
            log.info("resourceVersion of %s is gone (410); relisting", self.label)
            return _Listing()
        if isinstance(exc, TooManyRequests):
            self.m_restarts.labels(self.label, "throttled").inc()
            # Honour the server's Retry-After; without one, back off as for any failure.
            delay = exc.retry_after if exc.retry_after and exc.retry_after > 0 else (
                self.backoff.next_delay())
            log.warning("%s: throttled (429); retrying in %.2f s", self.label, delay)
            return _Waiting(delay, resume)
        self.m_restarts.labels(self.label, "error").inc()
        delay = self.backoff.next_delay()
        log.warning("%s: %s; retrying in %.2f s", self.label, exc, delay)
        return _Waiting(delay, resume)

    async def _list(self, step: _Step) -> AsyncGenerator[WatchEvent[T]]:
        """Listing: one full list in pages (INIT, INIT_APPLY..., INIT_DONE), then watching."""
        self.m_relists.inc()
        yield WatchEvent(EventType.INIT, None, None, "")
        limit: int | None = self.config.page_size
        token: str | None = None
        api_version, kind = self.resource.api_version, self.resource.kind
        while True:
            try:
                page = await self.pages.list_raw(
                    label_selector=self.config.label_selector or None,
                    field_selector=self.config.field_selector or None, limit=limit,
                    continue_=token)
            except Gone:
                if token is None:
                    raise
                # The continue token expired (compaction during a long list): list again,
                # in one request, as client-go's pager does.
                log.info("list continue token of %s expired; listing without pages", self.label)
                limit = token = None
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
                rv = str(meta["resourceVersion"])
                step.next = _Watching(rv) if rv else _Listing()
                yield WatchEvent(EventType.INIT_DONE, None, None, rv)
                return

    async def _watch(self, rv: str, step: _Step) -> AsyncGenerator[WatchEvent[T]]:
        """Watching from ``rv``: events until the stream ends; then watching again or listing.

        ``step.next`` always holds the last resourceVersion seen (resume after any failure),
        or listing after a 410.
        """
        started = self.clock.monotonic()
        received = 0
        params: dict[str, str | int] = {
            **self.selectors,
            "watch": "1",
            "resourceVersion": rv,
            "timeoutSeconds": int(self.settings.watch_timeout * (1 + random.random())),  # noqa: S311
        }
        if self.config.bookmarks:
            params["allowWatchBookmarks"] = "true"
        stream = self.client.stream(self.path, params=params)
        lines = self._lines(stream, step)
        try:
            async for line in lines:
                received += 1
                kind = line.get("type")
                obj = line.get("object")
                if kind == "BOOKMARK":
                    bookmark = (obj or {}).get("metadata") or {}
                    step.next = _Watching(str(bookmark.get("resourceVersion") or rv))
                    continue
                if kind == "ERROR":
                    status = obj if isinstance(obj, dict) else {}
                    if status.get("code") == 410:
                        log.info("watch of %s from resourceVersion %s is too old (410); "
                                 "relisting", self.label, rv)
                        step.next, step.reason = _Listing(), "gone"
                        break
                    raise _WatchFailed(f"watch error: {status.get('message') or status}")
                counter = self.m_events.get(str(kind))
                if counter is None:
                    log.warning("unknown watch event type %r for %s", kind, self.label)
                    continue
                counter.value += 1
                meta_raw = obj.get("metadata") if type(obj) is dict else None
                new_rv = meta_raw.get("resourceVersion") if type(meta_raw) is dict else None
                change = self._prepare(
                    obj, EventType.DELETE if kind == "DELETED" else EventType.APPLY
                )
                if new_rv:
                    rv = str(new_rv)
                    step.next = _Watching(rv)
                if change is not None:
                    yield change
        finally:
            await lines.aclose()  # its inactivity timer stops now, not when collected
            await _close(stream)
        if (
            step.reason == "closed"
            and received == 0
            and self.clock.monotonic() - started < self.settings.short_watch
        ):
            raise _WatchFailed("the server closed the watch at once, without events")
        self.m_restarts.labels(self.label, step.reason).inc()

    async def _lines(self, stream: AsyncIterator[Any], step: _Step) -> AsyncGenerator[Any]:
        """The stream's lines until it ends or stays silent too long (``step.reason``).

        One timer per ``inactivity_timeout``, not one per line (an ``asyncio.timeout`` per
        read cost ~4 µs of a ~70 µs event, docs/decisions/0026-reconcile-overhead.md): a read
        records when it started; the timer, when it fires, cancels a read that has waited the
        whole period, and otherwise re-arms itself for the current read's deadline. Only a
        read is ever cancelled (never the consumer between lines), and a cancel of the task
        by anyone else still propagates.
        """
        loop = asyncio.get_running_loop()
        current_task = asyncio.current_task
        limit = self.settings.inactivity_timeout
        since: float | None = None  # when the pending read started; None between reads
        reader: asyncio.Task[Any] | None = None  # the task reading (a generator may move)
        expired = False
        timer: asyncio.TimerHandle | None = None

        def check() -> None:
            nonlocal timer, expired
            now = loop.time()
            if since is not None and reader is not None and now - since >= limit:
                expired = True
                reader.cancel()  # lands in the pending read, where ``since`` was set
            else:
                timer = loop.call_at((now if since is None else since) + limit, check)

        timer = loop.call_at(loop.time() + limit, check)
        try:
            while True:
                reader = current_task()
                assert reader is not None
                already = reader.cancelling()
                since = loop.time()
                try:
                    line = await anext(stream)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if not expired or reader.uncancel() > already:
                        raise
                    step.reason = "inactive"
                    log.warning("watch of %s silent for %.0f s; reopening", self.label, limit)
                    return
                since = None
                yield line
        finally:
            if timer is not None:
                timer.cancel()


async def _close(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def _unchanged(raw: Any) -> Any:
    return raw


def _is_typed_decode(decode: Decode[Any]) -> bool:
    """Whether ``decode`` is a typed class's own :meth:`Resource.decode` (not overridden)."""
    owner = getattr(decode, "__self__", None)
    return (
        isinstance(owner, type) and issubclass(owner, Resource)
        and getattr(decode, "__func__", None) is getattr(Resource.decode, "__func__", None)
    )


def _describe(meta: dict[str, Any]) -> str:
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))
