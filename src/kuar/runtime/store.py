"""The store: an in-memory, indexed cache of one kind of object, kept by the reflector.

Place in the pipeline: written only by :func:`kuar.runtime.reflector.reflector` (from watcher
events); read by event handlers and reconcilers, usually through an
:class:`~kuar.runtime.informer.Informer`. Known as ``cache.Indexer``/``ThreadSafeStore`` in
client-go and ``reflector::Store`` in kube-rs.

Guarantees:
- Reads are consistent snapshots of single objects: an object is replaced as a whole, never
  changed in place. Objects are handed out as stored, read-only views (no copy per read).
- A relist is applied atomically: the new objects are collected aside and swapped in at
  ``INIT_DONE`` together with rebuilt indexes, so readers never see a half-done relist; until
  then they keep seeing the previous state.
- :meth:`Store.apply` reports exactly what changed. After a relist only objects whose
  resourceVersion (or uid) changed, appeared or vanished are reported, so a relist causes at
  most one extra reconcile per changed object and none for unchanged ones. A replayed event
  with the resourceVersion already stored is not reported.
- Indexes: ``namespace`` and ``owner`` (owner uid) are always kept; custom index functions
  can be added at any time (the index is built over the current objects).
- :meth:`Store.wait_until_synced` returns once the first full list is in.
Caveats: one event loop only; index values must be strings.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Iterable
from typing import Generic, NamedTuple, TypeVar

from kuar.runtime.objects import MetaView, ObjectKey
from kuar.runtime.watcher import EventType, WatchEvent

T = TypeVar("T")

NAMESPACE_INDEX = "namespace"
OWNER_INDEX = "owner"

IndexFunc = Callable[[T, MetaView], Iterable[str]]
"""Computes the index values of an object from the object and its metadata."""


class Cached(NamedTuple, Generic[T]):
    """One stored object and its metadata."""

    object: T
    meta: MetaView


class Change(NamedTuple, Generic[T]):
    """What one watcher event changed in the store: ``old`` and/or ``new`` state of ``key``."""

    key: ObjectKey
    old: Cached[T] | None
    """The state before (``None`` when the object is new)."""
    new: Cached[T] | None
    """The state after (``None`` when the object was deleted)."""

    @property
    def type(self) -> str:
        """``"added"``, ``"modified"`` or ``"deleted"``."""
        if self.old is None:
            return "added"
        return "deleted" if self.new is None else "modified"

    @property
    def latest(self) -> Cached[T]:
        """The newest known state: ``new``, or ``old`` for a deletion."""
        state = self.new if self.new is not None else self.old
        assert state is not None
        return state


def _namespace_index(obj: object, meta: MetaView) -> Iterable[str]:
    return (meta.namespace,)


def _owner_index(obj: object, meta: MetaView) -> Iterable[str]:
    refs = meta._data.get("ownerReferences")
    if not refs:
        return ()
    return [uid for ref in refs if (uid := ref.get("uid")) is not None]


class Store(Generic[T]):
    """An indexed map from :class:`ObjectKey` to the latest state of each object."""

    def __init__(self) -> None:
        """An empty, unsynced store with the ``namespace`` and ``owner`` indexes."""
        self._items: dict[ObjectKey, Cached[T]] = {}
        self._indexers: dict[str, IndexFunc[T]] = {
            NAMESPACE_INDEX: _namespace_index,
            OWNER_INDEX: _owner_index,
        }
        self._indices: dict[str, dict[str, set[ObjectKey]]] = {
            NAMESPACE_INDEX: {}, OWNER_INDEX: {},
        }
        self._relist: dict[ObjectKey, Cached[T]] | None = None
        self._synced = asyncio.Event()
        self.resource_version = ""
        """The resourceVersion of the last applied event or list."""

    # --- reading -------------------------------------------------------------------------
    def get(self, key: ObjectKey | str) -> T | None:
        """The object at ``key`` (``ObjectKey`` or ``"ns/name"``), or ``None``."""
        if type(key) is str:
            key = ObjectKey.parse(key)
        entry = self._items.get(key)  # type: ignore[arg-type]
        return entry.object if entry is not None else None

    def cached(self, key: ObjectKey) -> Cached[T] | None:
        """The object and its metadata at ``key``, or ``None``."""
        return self._items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> list[ObjectKey]:
        """All keys (a snapshot)."""
        return list(self._items)

    def list(self, namespace: str | None = None) -> list[T]:
        """All objects, or those in ``namespace``."""
        if namespace is None:
            return [entry.object for entry in self._items.values()]
        return self.by_index(NAMESPACE_INDEX, namespace)

    def by_index(self, index: str, value: str) -> builtins.list[T]:
        """Objects whose ``index`` function returned ``value``."""
        keys = self._indices[index].get(value)
        if not keys:
            return []
        items = self._items
        return [items[k].object for k in keys]

    def index_keys(self, index: str, value: str) -> builtins.list[ObjectKey]:
        """Keys of the objects whose ``index`` function returned ``value``."""
        return list(self._indices[index].get(value, ()))

    def add_index(self, name: str, func: IndexFunc[T]) -> None:
        """Add (or replace) an index and build it over the current objects."""
        self._indexers[name] = func
        index: dict[str, set[ObjectKey]] = {}
        self._indices[name] = index
        for key, entry in self._items.items():
            for value in func(entry.object, entry.meta):
                index.setdefault(value, set()).add(key)

    # --- sync ----------------------------------------------------------------------------
    @property
    def synced(self) -> bool:
        """Whether the first full list has been applied."""
        return self._synced.is_set()

    async def wait_until_synced(self, timeout: float | None = None) -> None:
        """Wait for the first full list; raises ``TimeoutError`` after ``timeout`` seconds."""
        if self._synced.is_set():
            return
        async with asyncio.timeout(timeout):
            await self._synced.wait()

    # --- writing (the reflector) ---------------------------------------------------------
    def _index_add(self, key: ObjectKey, entry: Cached[T]) -> None:
        for name, func in self._indexers.items():
            index = self._indices[name]
            for value in func(entry.object, entry.meta):
                keys = index.get(value)
                if keys is None:
                    index[value] = {key}
                else:
                    keys.add(key)

    def _index_remove(self, key: ObjectKey, entry: Cached[T]) -> None:
        for name, func in self._indexers.items():
            index = self._indices[name]
            for value in func(entry.object, entry.meta):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]

    def apply(self, event: WatchEvent[T]) -> Iterable[Change[T]]:
        """Apply one watcher event; return what changed (see the module's guarantees)."""
        kind = event.type
        meta = event.meta
        if kind is EventType.APPLY:
            assert meta is not None and event.object is not None
            key = meta.key
            new = Cached(event.object, meta)
            old = self._items.get(key)
            self.resource_version = event.resource_version
            if old is not None:
                if old.meta.resource_version == event.resource_version:
                    return ()
                self._index_remove(key, old)
            self._items[key] = new
            self._index_add(key, new)
            return (Change(key, old, new),)
        if kind is EventType.DELETE:
            assert meta is not None
            key = meta.key
            self.resource_version = event.resource_version
            old = self._items.pop(key, None)
            if old is None:
                return ()
            self._index_remove(key, old)
            if event.object is not None:  # the last state, as the server saw it
                old = Cached(event.object, meta)
            return (Change(key, old, None),)
        if kind is EventType.INIT_APPLY:
            assert meta is not None and event.object is not None
            if self._relist is None:
                self._relist = {}
            self._relist[meta.key] = Cached(event.object, meta)
            return ()
        if kind is EventType.INIT:
            self._relist = {}
            return ()
        if kind is EventType.INIT_DONE:
            return self._swap(event.resource_version)
        raise ValueError(f"unknown event type {kind!r}")

    def _swap(self, resource_version: str) -> builtins.list[Change[T]]:
        fresh = self._relist if self._relist is not None else {}
        self._relist = None
        previous = self._items
        changes: builtins.list[Change[T]] = []
        for key, entry in fresh.items():
            old = previous.get(key)
            if old is None:
                changes.append(Change(key, None, entry))
            elif (
                old.meta.resource_version != entry.meta.resource_version
                or old.meta.uid != entry.meta.uid
            ):
                changes.append(Change(key, old, entry))
        for key, old in previous.items():
            if key not in fresh:
                changes.append(Change(key, old, None))
        # Build the new indexes aside, then swap both maps in one step.
        indices: dict[str, dict[str, set[ObjectKey]]] = {name: {} for name in self._indexers}
        for name, func in self._indexers.items():
            index = indices[name]
            for key, entry in fresh.items():
                for value in func(entry.object, entry.meta):
                    keys = index.get(value)
                    if keys is None:
                        index[value] = {key}
                    else:
                        keys.add(key)
        self._items, self._indices = fresh, indices
        self.resource_version = resource_version
        self._synced.set()
        return changes
