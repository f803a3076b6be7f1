"""The Event recorder: events.k8s.io/v1 Events about objects, aggregated and rate limited.

Place in the pipeline: called by reconcilers (``recorder.event(obj, ...)``); writes
:class:`kuar.models.events.v1.Event` objects through ``Api[Event]``. Known as
``tools/events.EventRecorder`` in client-go.

Semantics, as client-go does it:
- isomorphic Events (same object, type, reason, action and note) within ``series_window``
  (6 min) become one Event with a ``series``: the second occurrence patches
  ``series.count = 2``; later ones only count locally and are written every
  ``series_refresh`` (client-go's 30 min heartbeat; shorter here by default so ``kubectl``
  shows counts while they matter) and on :meth:`EventRecorder.flush`;
- a per-object token bucket (burst 25, one token per 5 minutes: client-go's
  ``EventSourceObjectSpamFilter``) drops further distinct Events about a noisy object;
- recording never raises and never blocks a reconcile: writes happen in the background and
  failures are logged.
Caveats: aggregation state is per process; after a restart the next occurrence makes a new
Event. Notes longer than 1 KiB are cut (the API's limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from kuar.client import Api, ApiError, Client, NotFound, TransportError
from kuar.resources import ObjectMeta, Resource

if TYPE_CHECKING:
    # imported on the first Event: the generated core/v1 models cost ~10 MiB of RSS, which a
    # controller that records no Event need not pay
    from kuar.models.core.v1 import ObjectReference
    from kuar.models.events.v1 import Event

log = logging.getLogger("kuar.runtime.recorder")

T = TypeVar("T")

NORMAL = "Normal"
"""The Event type of things going as expected (``type: Normal``)."""
WARNING = "Warning"
"""The Event type of a problem someone may need to look at (``type: Warning``)."""
MAX_NOTE = 1024


@dataclass(frozen=True, kw_only=True)
class RecorderSettings:
    """Aggregation and rate limits."""

    controller: str
    """``reportingController``, e.g. ``kuar.dev/loadtest-controller``."""
    instance: str = field(default_factory=lambda: f"kuar-{secrets.token_hex(4)}")
    """``reportingInstance``: this replica."""
    series_window: float = 360.0
    """Isomorphic events closer than this join one series (client-go: 6 minutes)."""
    series_refresh: float = 30.0
    """How often a growing series is written (client-go heartbeats every 30 min)."""
    burst: int = 25
    """Distinct events per object before rate limiting (client-go's spam filter burst)."""
    refill_seconds: float = 300.0
    """One more event per object every this many seconds (client-go: 1/300 qps)."""


@dataclass
class _Series:
    name: str
    namespace: str
    count: int
    last: float
    written_count: int
    pending: bool = False


@dataclass
class _Bucket:
    tokens: float
    stamp: float


def _time(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)  # a MicroTime: written with 6 digits


def _reference(obj: Mapping[str, Any] | Resource) -> ObjectReference:
    from kuar.models.core.v1 import ObjectReference

    if isinstance(obj, Resource):
        m = obj.metadata
        return ObjectReference(api_version=obj.api_version, kind=obj.kind, name=m.name or "",
                               uid=m.uid or "", resource_version=m.resource_version or "",
                               namespace=m.namespace or None)
    meta = obj.get("metadata") or {}
    return ObjectReference(
        api_version=str(obj.get("apiVersion", "")), kind=str(obj.get("kind", "")),
        name=str(meta.get("name", "")), uid=str(meta.get("uid", "")),
        resource_version=str(meta.get("resourceVersion", "")),
        namespace=str(meta["namespace"]) if meta.get("namespace") else None)


class EventRecorder:
    """Records Events about objects; see the module docstring for aggregation and limits."""

    def __init__(self, client: Client, settings: RecorderSettings) -> None:
        """A recorder writing through ``client``."""
        self.client = client
        self.settings = settings
        self._events_api: Api[Event] | None = None
        self._series: dict[tuple[str, ...], _Series] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None

    @property
    def _events(self) -> Api[Event]:
        if self._events_api is None:
            from kuar.models.events.v1 import Event

            self._events_api = Api(self.client, Event, field_manager="kuar-recorder")
        return self._events_api

    def event(
        self,
        obj: Mapping[str, Any] | Resource,
        type: str,
        reason: str,
        note: str,
        *,
        action: str | None = None,
        related: Mapping[str, Any] | Resource | None = None,
    ) -> None:
        """Record an Event about ``obj`` (typed, or a dict or view with apiVersion/kind/metadata).

        ``type`` is ``Normal`` or ``Warning``; ``reason`` is UpperCamelCase; ``action`` says
        what was done (defaults to ``reason``). Returns at once; the write is in the background.
        """
        now = time.time()
        ref = _reference(obj)
        note = note[:MAX_NOTE]
        action = action or reason
        key = (ref.uid or f"{ref.kind}/{ref.namespace or ''}/{ref.name}",
               type, reason, action, note)
        series = self._series.get(key)
        if series is not None and now - series.last <= self.settings.series_window:
            series.count += 1
            series.last = now
            if series.written_count == 1:  # the second occurrence starts the series at once
                self._spawn(self._write_series(series))
            else:
                series.pending = True
            self._ensure_refresher()
            return
        if not self._allow(key[0], now):
            log.debug("event about %s dropped by rate limit: %s", ref.name, reason)
            return
        namespace = ref.namespace or "default"
        name = f"{ref.name}.{secrets.token_hex(8)}"
        self._series[key] = _Series(name, namespace, 1, now, 1)
        from kuar.models.events.v1 import Event

        self._spawn(self._create(Event(
            metadata=ObjectMeta(name=name, namespace=namespace),
            event_time=_time(now), type=type, reason=reason, action=action, note=note,
            regarding=ref, related=_reference(related) if related is not None else None,
            reporting_controller=self.settings.controller,
            reporting_instance=self.settings.instance,
        )))

    def _allow(self, obj_key: str, now: float) -> bool:
        s = self.settings
        bucket = self._buckets.setdefault(obj_key, _Bucket(float(s.burst), now))
        bucket.tokens = min(float(s.burst), bucket.tokens + (now - bucket.stamp) / s.refill_seconds)
        bucket.stamp = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _create(self, event: Event) -> None:
        try:
            await self._events.create(event)
        except (ApiError, TransportError, OSError) as exc:
            log.warning("event %s %s not recorded: %s", event.reason, event.note, exc)

    async def _write_series(self, series: _Series) -> None:
        series.pending = False
        count, last = series.count, series.last
        try:
            from kuar.models.events.v1 import EventSeries

            update = EventSeries(count=count, last_observed_time=_time(last))
            await self._events.patch(
                series.name, {"series": update.model_dump(mode="json", by_alias=True)},
                namespace=series.namespace,
            )
            series.written_count = max(series.written_count, count)
        except NotFound:
            pass  # the Event expired (default TTL 1 h); the next occurrence starts anew
        except (ApiError, TransportError, OSError) as exc:
            log.warning("event series %s not updated: %s", series.name, exc)

    def _ensure_refresher(self) -> None:
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.series_refresh)
            await self.flush()

    async def flush(self) -> None:
        """Write every pending series count and wait for writes in flight."""
        now = time.time()
        for key, series in list(self._series.items()):
            if series.pending:
                await self._write_series(series)
            if now - series.last > self.settings.series_window:
                del self._series[key]
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Flush, then stop the background refresher."""
        await self.flush()
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher


def decode_with_events(
    decode: Callable[[dict[str, Any]], T], recorder: EventRecorder, *,
    reason: str = "InvalidObject",
) -> Callable[[dict[str, Any]], T]:
    """Wrap a watcher ``decode`` hook so an object it rejects also gets a Warning Event.

    The watcher already logs and counts the failure (``kuar_decode_errors_total``) and skips
    the object; the Event tells the object's owner, in ``kubectl describe``, why the
    controller ignores it. Pass the same wrapped function wherever the informer is requested.
    """

    def wrapped(raw: dict[str, Any]) -> T:
        try:
            return decode(raw)
        except Exception as exc:
            recorder.event(raw, WARNING, reason,
                           f"{recorder.settings.controller} cannot read this object: {exc}",
                           action="Decode")
            raise

    return wrapped
