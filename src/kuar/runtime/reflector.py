"""The reflector stage: apply watcher events to a store and pass on what changed.

Place in the pipeline: between :func:`kuar.runtime.watcher.watcher` and the event handlers
(normally run by an :class:`~kuar.runtime.informer.Informer`). Known as the ``Reflector`` +
``DeltaFIFO`` pair in client-go and ``reflector()`` in kube-rs.

``async for change in reflector(store, watcher(client, resource)): ...`` keeps ``store`` up to
date and yields one :class:`~kuar.runtime.store.Change` per object that really changed (see
:class:`~kuar.runtime.store.Store` for the relist guarantees). The store is updated before the
change is yielded, so a consumer reading the store sees at least that state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

from kuar.runtime.store import Change, Store
from kuar.runtime.watcher import WatchEvent

T = TypeVar("T")


async def reflector(
    store: Store[T], events: AsyncIterator[WatchEvent[T]]
) -> AsyncIterator[Change[T]]:
    """Apply each event of ``events`` to ``store``; yield the resulting changes."""
    apply = store.apply
    async for event in events:
        for change in apply(event):
            yield change
