"""Event handlers: turn a change of some object into the requests of the objects to reconcile.

Place in the pipeline: after the predicates of one controller watch, before the workqueue.
Known as ``handler.EventHandler`` in controller-runtime (``EnqueueRequestForObject``,
``EnqueueRequestForOwner``, ``EnqueueRequestsFromMapFunc``) and as the mappers of kube-rs's
``Controller::owns`` / ``watches``.

A handler is a function from a :class:`~kuar.runtime.store.Change` to an iterable of
:data:`~kuar.runtime.reconcile.Request`. On an update, owner and mapped handlers look at both
the old and the new state, so a child that moves from one owner to another (or a mapped object
that stops matching) still wakes the owner it left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from kuar.client import ResourceInfo
from kuar.client.discovery import split_api_version
from kuar.runtime.reconcile import Request
from kuar.runtime.store import Change

T = TypeVar("T")
EventHandler = Callable[[Change[T]], Iterable[Request]]


def enqueue_object(change: Change[Any]) -> Iterable[Request]:
    """Reconcile the changed object itself (the handler of ``controller_for``)."""
    return (change.key,)


def enqueue_owner(owner: ResourceInfo, *, controller_only: bool = True) -> EventHandler[Any]:
    """Reconcile the owner of the changed object (the handler of ``owns``).

    Owners are found in ``metadata.ownerReferences`` by API group and kind (any version);
    with ``controller_only`` only the reference marked ``controller: true`` counts.
    """
    group, kind, namespaced = owner.group, owner.kind, owner.namespaced

    def handler(change: Change[Any]) -> Iterable[Request]:
        found: list[Request] = []
        for state in (change.old, change.new):
            if state is None:
                continue
            refs = state.meta._data.get("ownerReferences")
            if not refs:
                continue
            namespace = state.meta.namespace if namespaced else ""
            for ref in refs:
                if controller_only and not ref.get("controller"):
                    continue
                if ref.get("kind") != kind:
                    continue
                if split_api_version(str(ref.get("apiVersion", "")))[0] != group:
                    continue
                request = Request(namespace, str(ref.get("name", "")))
                if request not in found:
                    found.append(request)
        return found

    return handler


def enqueue_mapped(map_fn: Callable[[T], Iterable[Request]]) -> EventHandler[T]:
    """Reconcile whatever ``map_fn`` returns for the changed object (old and new state)."""

    def handler(change: Change[T]) -> Iterable[Request]:
        found: list[Request] = []
        for state in (change.old, change.new):
            if state is None:
                continue
            for request in map_fn(state.object):
                if request not in found:
                    found.append(request)
        return found

    return handler
