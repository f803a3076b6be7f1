"""The builder: ``controller_for(Kind).owns(Child).watches(Other, map_fn).build(reconcile)``.

``controller_for(LoadTest, cache=cache).owns(Job).build(reconciler)``: the kinds are typed
classes (generated built-ins from :mod:`kuar.models`, or custom resources), or
:class:`~kuar.client.ResourceInfo` values for kinds without a class.

Place in the pipeline: on top; wires informers from an
:class:`~kuar.runtime.informer.InformerCache`, predicates and handlers into a
:class:`~kuar.runtime.controller.Controller`. Known as ``builder.ControllerManagedBy`` in
controller-runtime and ``Controller::new(...).owns(...).watches(...)`` in kube-rs.

It is exactly equivalent to wiring the stages by hand::

    primary = cache.informer(LoadTest, config)
    Controller(name, reconciler, watches=[
        Watch(primary, enqueue_object, predicates),
        Watch(cache.informer(Job, config), enqueue_owner(LoadTest.resource_info()), predicates),
        Watch(cache.informer(Service, config), enqueue_mapped(map_fn), predicates),
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

from kuar.base.clock import SYSTEM_CLOCK, Clock
from kuar.client import ResourceInfo
from kuar.resources import Resource
from kuar.runtime.controller import Controller, ControllerSettings, Watch
from kuar.runtime.handlers import enqueue_mapped, enqueue_object, enqueue_owner
from kuar.runtime.informer import Informer, InformerCache
from kuar.runtime.predicates import Predicate
from kuar.runtime.reconcile import Reconciler, Request
from kuar.runtime.store import Store
from kuar.runtime.watcher import Decode, WatchConfig


class Builder:
    """Collects the watches of one controller; :meth:`build` makes the controller."""

    def __init__(
        self,
        resource: ResourceInfo | type[Resource],
        config: WatchConfig | None = None,
        *,
        cache: InformerCache,
        decode: Decode[Any] | None = None,
        predicates: Iterable[Predicate] = (),
    ) -> None:
        """See :func:`controller_for`."""
        primary = cache.informer(resource, config, decode=decode)
        self.resource = primary.resource
        self.cache = cache
        self.namespace = primary.namespace
        self._name = self.resource.kind.lower()
        self._settings: ControllerSettings | None = None
        self._global_predicates: list[Predicate] = []
        self._wait_for: list[Store[Any] | Informer[Any]] = []
        self._clock: Clock = SYSTEM_CLOCK
        self._registry: CollectorRegistry | None = None
        self._watches: list[tuple[Informer[Any], Any, tuple[Predicate, ...]]] = [
            (primary, enqueue_object, tuple(predicates))
        ]

    @property
    def informer(self) -> Informer[Any]:
        """The informer of the primary kind (its ``store`` is what reconcilers read)."""
        return self._watches[0][0]

    def _informer(
        self, resource: ResourceInfo | type[Resource], config: WatchConfig | None,
        decode: Decode[Any] | None,
    ) -> Informer[Any]:
        # Other kinds default to the primary kind's namespace.
        return self.cache.informer(
            resource, config or WatchConfig(namespace=self.namespace), decode=decode)

    def owns(
        self,
        resource: ResourceInfo | type[Resource],
        config: WatchConfig | None = None,
        *,
        decode: Decode[Any] | None = None,
        predicates: Iterable[Predicate] = (),
        controller_only: bool = True,
    ) -> Builder:
        """Reconcile the owner when an object of ``resource`` that it controls changes.

        Children are matched by their ``ownerReferences`` (set them with
        :func:`kuar.runtime.owners.set_controller_reference`). ``config`` defaults to the
        primary kind's namespace.
        """
        informer = self._informer(resource, config, decode)
        handler = enqueue_owner(self.resource, controller_only=controller_only)
        self._watches.append((informer, handler, tuple(predicates)))
        return self

    def watches(
        self,
        resource: ResourceInfo | type[Resource],
        map_fn: Callable[[Any], Iterable[Request]],
        config: WatchConfig | None = None,
        *,
        decode: Decode[Any] | None = None,
        predicates: Iterable[Predicate] = (),
    ) -> Builder:
        """Reconcile whatever ``map_fn(obj)`` returns when an object of ``resource`` changes."""
        informer = self._informer(resource, config, decode)
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
    resource: ResourceInfo | type[Resource],
    config: WatchConfig | None = None,
    *,
    cache: InformerCache,
    decode: Decode[Any] | None = None,
    predicates: Iterable[Predicate] = (),
) -> Builder:
    """Start building a controller that reconciles objects of ``resource``.

    ``resource`` is a typed class (``controller_for(LoadTest, cache=cache)``: the stores hold
    typed objects) or a :class:`ResourceInfo` (read-only views, or what ``decode`` makes).
    ``config`` (a :class:`WatchConfig`) limits the watch, and its namespace becomes the default
    of every owned and watched kind (``None``: all namespaces).
    """
    return Builder(resource, config, cache=cache, decode=decode, predicates=predicates)
