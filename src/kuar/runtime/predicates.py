"""Predicates: filters that decide which changes are worth a reconcile.

Place in the pipeline: between the informer's changes and the event handlers of one
controller watch (``builder.with_predicates(...)`` or ``predicates=`` on one watch). Known as
``predicate.Predicate`` in controller-runtime (``GenerationChangedPredicate``,
``LabelChangedPredicate``, ``AnnotationChangedPredicate``) and ``predicate_filter`` in kube-rs.

A predicate gets a :class:`~kuar.runtime.store.Change` and returns ``True`` to let it through.
The *changed* predicates only judge updates: additions and deletions always pass, so a
controller never misses an object appearing or disappearing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kuar.runtime.store import Change

Predicate = Callable[[Change[Any]], bool]
"""A filter on one change: ``True`` lets it through to the controller's event handlers."""


def generation_changed(change: Change[Any]) -> bool:
    """Updates pass only when ``metadata.generation`` changed (spec edits, not status writes).

    Caveat: kinds without a generation (most built-in ones, e.g. ConfigMap) never pass an
    update; do not use it on those.
    """
    if change.old is None or change.new is None:
        return True
    return change.old.meta.generation != change.new.meta.generation


def labels_changed(change: Change[Any]) -> bool:
    """Updates pass only when ``metadata.labels`` changed."""
    if change.old is None or change.new is None:
        return True
    return change.old.meta.labels != change.new.meta.labels


def annotations_changed(change: Change[Any]) -> bool:
    """Updates pass only when ``metadata.annotations`` changed."""
    if change.old is None or change.new is None:
        return True
    return change.old.meta.annotations != change.new.meta.annotations


def resource_version_changed(change: Change[Any]) -> bool:
    """Updates pass only when the resourceVersion changed (drops replays)."""
    if change.old is None or change.new is None:
        return True
    return change.old.meta.resource_version != change.new.meta.resource_version


def any_of(*predicates: Predicate) -> Predicate:
    """Passes when at least one of ``predicates`` passes (``Or`` in controller-runtime)."""

    def check(change: Change[Any]) -> bool:
        return any(p(change) for p in predicates)

    return check


def all_of(*predicates: Predicate) -> Predicate:
    """Passes when every one of ``predicates`` passes (``And`` in controller-runtime)."""

    def check(change: Change[Any]) -> bool:
        return all(p(change) for p in predicates)

    return check


def negate(predicate: Predicate) -> Predicate:
    """Passes when ``predicate`` does not (``Not`` in controller-runtime)."""

    def check(change: Change[Any]) -> bool:
        return not predicate(change)

    return check
