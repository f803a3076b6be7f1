"""Prometheus metrics of the runtime, under controller-runtime's names so dashboards work.

Place in the pipeline: updated by the watcher, the workqueue and the controller; exposed later
by the manager's metrics server (which serves :data:`REGISTRY` unless given another).

Names and labels follow controller-runtime (``pkg/metrics/workqueue.go`` and
``pkg/internal/controller/metrics``): ``workqueue_*{name, controller}`` and
``controller_runtime_*{controller}``, with ``controller_runtime_reconcile_total`` also labelled
``result`` in ``success | error | requeue | requeue_after``. kuar's own metrics start ``kuar_``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kuar.base.metrics import REGISTRY

# controller-runtime: prometheus.ExponentialBuckets(10e-9, 10, 12) for the workqueue.
WORKQUEUE_BUCKETS = tuple(1e-8 * 10**i for i in range(12))
RECONCILE_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8,
    0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30,
    40, 50, 60,
)

_WQ = ("name", "controller")


@dataclass(frozen=True)
class RuntimeMetrics:
    """The metric families of one registry (see :func:`runtime_metrics`)."""

    registry: CollectorRegistry
    workqueue_depth: Gauge
    workqueue_adds: Counter
    workqueue_queue_duration: Histogram
    workqueue_work_duration: Histogram
    workqueue_unfinished_work: Gauge
    workqueue_longest_running: Gauge
    workqueue_retries: Counter
    reconcile_total: Counter
    reconcile_errors: Counter
    terminal_reconcile_errors: Counter
    reconcile_time: Histogram
    max_concurrent_reconciles: Gauge
    active_workers: Gauge
    watch_events: Counter
    watch_restarts: Counter
    watch_relists: Counter
    decode_errors: Counter


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, RuntimeMetrics] = (
    weakref.WeakKeyDictionary()
)


def runtime_metrics(registry: CollectorRegistry | None = None) -> RuntimeMetrics:
    """The runtime's metric families in ``registry`` (default :data:`REGISTRY`), made once."""
    reg = REGISTRY if registry is None else registry
    found = _BY_REGISTRY.get(reg)
    if found is not None:
        return found
    m = RuntimeMetrics(
        registry=reg,
        workqueue_depth=Gauge(
            "workqueue_depth", "Current depth of workqueue", _WQ, registry=reg,
            multiprocess_mode="livesum",
        ),
        workqueue_adds=Counter(
            "workqueue_adds_total", "Total number of adds handled by workqueue", _WQ,
            registry=reg,
        ),
        workqueue_queue_duration=Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested", _WQ,
            buckets=WORKQUEUE_BUCKETS, registry=reg,
        ),
        workqueue_work_duration=Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.", _WQ,
            buckets=WORKQUEUE_BUCKETS, registry=reg,
        ),
        workqueue_unfinished_work=Gauge(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been "
            "observed by work_duration. Large values indicate stuck threads.", _WQ,
            registry=reg,
        ),
        workqueue_longest_running=Gauge(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            _WQ, registry=reg,
        ),
        workqueue_retries=Counter(
            "workqueue_retries_total", "Total number of retries handled by workqueue", _WQ,
            registry=reg,
        ),
        reconcile_total=Counter(
            "controller_runtime_reconcile_total", "Total number of reconciliations per controller",
            ("controller", "result"), registry=reg,
        ),
        reconcile_errors=Counter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller", ("controller",), registry=reg,
        ),
        terminal_reconcile_errors=Counter(
            "controller_runtime_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors per controller", ("controller",),
            registry=reg,
        ),
        reconcile_time=Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller", ("controller",),
            buckets=RECONCILE_BUCKETS, registry=reg,
        ),
        max_concurrent_reconciles=Gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller", ("controller",),
            registry=reg,
        ),
        active_workers=Gauge(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller", ("controller",), registry=reg,
        ),
        watch_events=Counter(
            "kuar_watch_events_total", "Watch events received, by resource and event type",
            ("resource", "type"), registry=reg,
        ),
        watch_restarts=Counter(
            "kuar_watch_restarts_total",
            "Watch streams restarted, by resource and reason (closed, inactive, error, gone)",
            ("resource", "reason"), registry=reg,
        ),
        watch_relists=Counter(
            "kuar_watch_relists_total", "Full lists (initial and after 410 Gone) by resource",
            ("resource",), registry=reg,
        ),
        decode_errors=Counter(
            "kuar_decode_errors_total",
            "Objects skipped because the transform or decode hook raised", ("resource",),
            registry=reg,
        ),
    )
    _BY_REGISTRY[reg] = m
    return m
