"""The controller runtime: watch, cache, queue and reconcile Kubernetes objects.

Stages, in pipeline order (each usable alone; the builder wires them):

- :func:`watcher` (:mod:`.watcher`): list + watch one kind as a resilient event stream;
- :func:`reflector` and :class:`Store` (:mod:`.reflector`, :mod:`.store`): an indexed cache;
- :class:`Informer` / :class:`InformerCache` (:mod:`.informer`): shared watches + handlers;
- predicates and handlers (:mod:`.predicates`, :mod:`.handlers`): changes -> requests;
- :class:`WorkQueue` (:mod:`.workqueue`, :mod:`.ratelimit`): de-duplication and backoff;
- :class:`Controller` (:mod:`.controller`) running the reconcile contract (:mod:`.reconcile`);
- :func:`controller_for` (:mod:`.builder`): the friendly way to build all of the above.

Helpers for reconcilers: :mod:`.finalizers`, :mod:`.status`, :mod:`.conditions`,
:mod:`.owners`, the Event recorder :mod:`.recorder`; structured logs: :mod:`.log`;
metrics: :mod:`.metrics`; time: :mod:`.clock`.
"""

from kuar.base.clock import SYSTEM_CLOCK, Clock, ManualClock, SystemClock
from kuar.base.metrics import REGISTRY
from kuar.runtime.backoff import Backoff, BackoffSettings
from kuar.runtime.builder import Builder, controller_for
from kuar.runtime.conditions import find_condition, is_true, remove_condition, set_condition
from kuar.runtime.controller import Controller, ControllerSettings, Watch
from kuar.runtime.finalizers import add_finalizer, finalizer, has_finalizer, remove_finalizer
from kuar.runtime.handlers import enqueue_mapped, enqueue_object, enqueue_owner
from kuar.runtime.informer import Informer, InformerCache
from kuar.runtime.log import ReconcileContext, ReconcileContextFilter, reconcile_context
from kuar.runtime.metrics import runtime_metrics
from kuar.runtime.objects import (
    FrozenDict,
    FrozenList,
    MetaView,
    ObjectKey,
    ObjectView,
    Record,
    object_view,
    strip_managed_fields,
    thaw,
)
from kuar.runtime.owners import (
    AlreadyOwned,
    controller_reference,
    is_controlled_by,
    owner_reference,
    set_controller_reference,
)
from kuar.runtime.predicates import (
    Predicate,
    all_of,
    annotations_changed,
    any_of,
    generation_changed,
    labels_changed,
    negate,
    resource_version_changed,
)
from kuar.runtime.ratelimit import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    RateLimiterSettings,
    default_controller_rate_limiter,
)
from kuar.runtime.reconcile import Reconciler, Request, Result, TerminalError
from kuar.runtime.recorder import (
    NORMAL,
    WARNING,
    EventRecorder,
    RecorderSettings,
    decode_with_events,
)
from kuar.runtime.reflector import reflector
from kuar.runtime.status import patch_status, update_status
from kuar.runtime.store import Cached, Change, Store
from kuar.runtime.watcher import EventType, WatchConfig, WatcherSettings, WatchEvent, watcher
from kuar.runtime.workqueue import QueueShutDown, WorkQueue

__all__ = [
    "NORMAL",
    "REGISTRY",
    "SYSTEM_CLOCK",
    "WARNING",
    "AlreadyOwned",
    "Backoff",
    "BackoffSettings",
    "BucketRateLimiter",
    "Builder",
    "Cached",
    "Change",
    "Clock",
    "Controller",
    "ControllerSettings",
    "EventRecorder",
    "EventType",
    "FrozenDict",
    "FrozenList",
    "Informer",
    "InformerCache",
    "ItemExponentialFailureRateLimiter",
    "ManualClock",
    "MaxOfRateLimiter",
    "MetaView",
    "ObjectKey",
    "ObjectView",
    "Predicate",
    "QueueShutDown",
    "RateLimiter",
    "RateLimiterSettings",
    "ReconcileContext",
    "ReconcileContextFilter",
    "Reconciler",
    "Record",
    "RecorderSettings",
    "Request",
    "Result",
    "Store",
    "SystemClock",
    "TerminalError",
    "Watch",
    "WatchConfig",
    "WatchEvent",
    "WatcherSettings",
    "WorkQueue",
    "add_finalizer",
    "all_of",
    "annotations_changed",
    "any_of",
    "controller_for",
    "controller_reference",
    "decode_with_events",
    "default_controller_rate_limiter",
    "enqueue_mapped",
    "enqueue_object",
    "enqueue_owner",
    "finalizer",
    "find_condition",
    "generation_changed",
    "has_finalizer",
    "is_controlled_by",
    "is_true",
    "labels_changed",
    "negate",
    "object_view",
    "owner_reference",
    "patch_status",
    "reconcile_context",
    "reflector",
    "remove_condition",
    "remove_finalizer",
    "resource_version_changed",
    "runtime_metrics",
    "set_condition",
    "set_controller_reference",
    "strip_managed_fields",
    "thaw",
    "update_status",
    "watcher",
]
