"""The builder: ``controller_for(Kind).owns(Child).watches(Other, map_fn).build(reconcile)``.

Place in the pipeline: on top; wires informers from an
:class:`~kuar.runtime.informer.InformerCache`, predicates and handlers into a
:class:`~kuar.runtime.controller.Controller`. Known as ``builder.ControllerManagedBy`` in
controller-runtime and ``Controller::new(...).owns(...).watches(...)`` in kube-rs.

It is exactly equivalent to wiring the stages by hand::

    primary = cache.informer(resource)
    Controller(name, reconcile, watches=[
        Watch(primary, enqueue_object, predicates),
        Watch(cache.informer(child), enqueue_owner(resource), predicates),
        Watch(cache.informer(other), enqueue_mapped(map_fn), predicates),
    ])

Guarantees: every watch of one controller shares the process-wide informers of ``cache``
(one watch per kind and scope, however many controllers use it). Owned and watched kinds
default to the namespace of the primary kind. Predicates given to :meth:`Builder.with_predicates`
apply to every watch (controller-runtime's ``WithEventFilter``); ``predicates=`` of one call
apply to that watch only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry

from kuar.client import ResourceInfo
from kuar.runtime.clock import SYSTEM_CLOCK, Clock
from kuar.runtime.controller import Controller, ControllerSettings, Watch
from kuar.runtime.handlers import enqueue_mapped, enqueue_object, enqueue_owner
from kuar.runtime.informer import Informer, InformerCache
from kuar.runtime.predicates import Predicate
from kuar.runtime.reconcile import Reconciler, Request
from kuar.runtime.store import Store
from kuar.runtime.watcher import Decode

_UNSET: Any = object()


class Builder:
    """Collects the watches of one controller; :meth:`build` makes the controller."""

    def __init__(
        self,
        resource: ResourceInfo,
        *,
        cache: InformerCache,
        namespace: str | None = None,
        label_selector: str | None = None,
        decode: Decode[Any] | None = None,
        predicates: Iterable[Predicate] = (),
    ) -> None:
        """See :func:`controller_for`."""
        self.resource = resource
        self.cache = cache
        self.namespace = namespace
        self._name = resource.kind.lower()
        self._settings: ControllerSettings | None = None
        self._global_predicates: list[Predicate] = []
        self._wait_for: list[Store[Any] | Informer[Any]] = []
        self._clock: Clock = SYSTEM_CLOCK
        self._registry: CollectorRegistry | None = None
        primary = cache.informer(
            resource, namespace=namespace, label_selector=label_selector, decode=decode
        )
        self._watches: list[tuple[Informer[Any], Any, tuple[Predicate, ...]]] = [
            (primary, enqueue_object, tuple(predicates))
        ]

    @property
    def informer(self) -> Informer[Any]:
        """The informer of the primary kind (its ``store`` is what reconcilers read)."""
        return self._watches[0][0]

    def owns(
        self,
        resource: ResourceInfo,
        *,
        namespace: str | None = _UNSET,
        label_selector: str | None = None,
        decode: Decode[Any] | None = None,
        predicates: Iterable[Predicate] = (),
        controller_only: bool = True,
    ) -> Builder:
        """Reconcile the owner when an object of ``resource`` that it controls changes.

        Children are matched by their ``ownerReferences`` (set them with
        :func:`kuar.runtime.owners.set_controller_reference`).
        """
        informer = self.cache.informer(
            resource,
            namespace=self.namespace if namespace is _UNSET else namespace,
            label_selector=label_selector,
            decode=decode,
        )
        handler = enqueue_owner(self.resource, controller_only=controller_only)
        self._watches.append((informer, handler, tuple(predicates)))
        return self

    def watches(
        self,
        resource: ResourceInfo,
        map_fn: Callable[[Any], Iterable[Request]],
        *,
        namespace: str | None = _UNSET,
        label_selector: str | None = None,
        decode: Decode[Any] | None = None,
        predicates: Iterable[Predicate] = (),
    ) -> Builder:
        """Reconcile whatever ``map_fn(obj)`` returns when an object of ``resource`` changes."""
        informer = self.cache.informer(
            resource,
            namespace=self.namespace if namespace is _UNSET else namespace,
            label_selector=label_selector,
            decode=decode,
        )
        self._watches.append((informer, enqueue_mapped(map_fn), tuple(predicates)))
        return self

    def with_predicates(self, *predicates: Predicate) -> Builder:
        """Filter the changes of every watch of this controller."""
        self._global_predicates.extend(predicates)
        return self

    def named(self, name: str) -> Builder:
        """Name the controller (metrics label, logs); default: the kind in lower case."""
        self._name = name
        return self

    def with_settings(self, settings: ControllerSettings) -> Builder:
        """Use ``settings`` (concurrency, backoff, timeouts)."""
        self._settings = settings
        return self

    def waits_for(self, *caches: Store[Any] | Informer[Any]) -> Builder:
        """Also wait for these caches (read by the reconciler, not watched) before reconciling."""
        self._wait_for.extend(caches)
        return self

    def with_clock(self, clock: Clock) -> Builder:
        """Use ``clock`` for the workqueue (tests)."""
        self._clock = clock
        return self

    def with_registry(self, registry: CollectorRegistry) -> Builder:
        """Record metrics in ``registry`` instead of kuar's default one."""
        self._registry = registry
        return self

    def build(self, reconciler: Reconciler) -> Controller:
        """Make the controller (start it with ``await controller.run()``)."""
        shared = tuple(self._global_predicates)
        watches = [
            Watch(informer, handler, shared + own) for informer, handler, own in self._watches
        ]
        return Controller(
            self._name, reconciler, watches=watches, settings=self._settings,
            wait_for=self._wait_for, clock=self._clock, registry=self._registry,
        )


def controller_for(
    resource: ResourceInfo,
    *,
    cache: InformerCache,
    namespace: str | None = None,
    label_selector: str | None = None,
    decode: Decode[Any] | None = None,
    predicates: Iterable[Predicate] = (),
) -> Builder:
    """Start building a controller that reconciles objects of ``resource``.

    ``namespace`` limits every watch to one namespace (``None``: all); ``decode`` makes typed
    objects instead of :class:`~kuar.runtime.objects.DynamicObject`.
    """
    return Builder(
        resource, cache=cache, namespace=namespace, label_selector=label_selector,
        decode=decode, predicates=predicates,
    )
