"""Prometheus metrics of the runtime, under controller-runtime's names so dashboards work.

Place in the pipeline: updated by the watcher, the workqueue and the controller (in the
event loop, once or more per reconcile and per watch event); rendered by one
``prometheus_client`` collector per registry when the registry is scraped (the manager's
metrics server serves :data:`REGISTRY` unless given another).

Names and labels follow controller-runtime (``pkg/metrics/workqueue.go`` and
``pkg/internal/controller/metrics``): ``workqueue_*{name, controller}`` and
``controller_runtime_*{controller}``, with ``controller_runtime_reconcile_total`` also labelled
``result`` in ``success | error | requeue | requeue_after``. kuar's own metrics start ``kuar_``.

Why not ``prometheus_client``'s ``Counter``/``Gauge``/``Histogram``: each of their updates
takes a lock and goes through several calls (a histogram observation also scans its buckets
one by one), about 0.5-1.5 µs each, and a reconcile made 15 of them
(docs/decisions/0026-reconcile-overhead.md). Here each series is a plain object holding
numbers (:class:`CounterSeries`, :class:`GaugeSeries`, :class:`HistogramSeries`): an update is
one attribute increment, a histogram observation one ``bisect`` and two increments.

Guarantees:
- The exposition is the one ``prometheus_client``'s own classes gave: the same families in
  the same order, names, help texts, types, label sets, bucket bounds, ``_count``/``_sum``
  and the ``_created`` samples (unless ``prometheus_client.disable_created_metrics()``).
  Series are never removed; two owners asking for the same label values share one series
  (as ``prometheus_client`` children do), so two queues of one name add up.
- Thread safety: updates are meant for one thread (the event loop; kuar's runtime is
  single-threaded). The manager's ``/metrics`` handler scrapes in that same thread, so a
  scrape never sees an update half done. A scrape from another thread (e.g.
  ``prometheus_client.start_http_server``) reads each number atomically (a float or int
  attribute read under the GIL) and copies the series tables before iterating them; a
  histogram's ``_count`` is the sum of its buckets read in the same pass (so ``_count`` and
  the ``+Inf`` bucket always agree, as in ``prometheus_client``), while ``_sum`` may lag its
  buckets by the observation in progress. Series creation takes a lock.
Caveats: ``prometheus_client``'s multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) does not see
these series; each process exposes its own (a controller runs in one process).
"""

from __future__ import annotations

import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Generic, TypeVar

import prometheus_client.metrics as _client
from prometheus_client import CollectorRegistry, Metric
from prometheus_client.utils import floatToGoString

from kuar.base.metrics import REGISTRY

# controller-runtime: prometheus.ExponentialBuckets(10e-9, 10, 12) for the workqueue.
WORKQUEUE_BUCKETS = tuple(1e-8 * 10**i for i in range(12))
RECONCILE_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8,
    0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30,
    40, 50, 60,
)

_WQ = ("name", "controller")
S = TypeVar("S")


class CounterSeries:
    """One labelled counter: :attr:`value` only goes up."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        """A counter at 0, created now."""
        self.value = 0.0
        """The count so far (hot paths may add to it directly)."""
        self.created = time.time()
        """When the series was made (the ``_created`` sample)."""

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (>= 0)."""
        if amount < 0:
            raise ValueError("counters can only be incremented by non-negative amounts")
        self.value += amount


class GaugeSeries:
    """One labelled gauge: a value that goes up and down, or a function read at scrape time."""

    __slots__ = ("function", "value")

    def __init__(self) -> None:
        """A gauge at 0."""
        self.value = 0.0
        """The current value (hot paths may change it directly)."""
        self.function: Callable[[], float] | None = None
        """When set, the value is this function's result at scrape time."""

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount``."""
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        """Subtract ``amount``."""
        self.value -= amount

    def set(self, value: float) -> None:
        """Set the value."""
        self.value = float(value)

    def set_function(self, function: Callable[[], float]) -> None:
        """Read the value from ``function`` at each scrape (the last one set wins)."""
        self.function = function

    def get(self) -> float:
        """The value a scrape shows now."""
        function = self.function
        return float(function()) if function is not None else self.value


class HistogramSeries:
    """One labelled histogram: per-bucket counts (not cumulative) and the sum."""

    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        """An empty histogram over ``bounds`` (ascending upper bounds ending with +Inf)."""
        self.bounds = bounds
        """Upper bounds (inclusive), the last +Inf."""
        self.counts = [0] * len(bounds)
        """Observations per bucket: ``counts[i]`` those in ``(bounds[i-1], bounds[i]]``."""
        self.sum = 0.0
        """The sum of all observations."""
        self.created = time.time()
        """When the series was made (the ``_created`` sample)."""

    def observe(self, amount: float) -> None:
        """Count ``amount`` in the first bucket whose bound is >= it; add it to the sum."""
        self.sum += amount
        self.counts[bisect_left(self.bounds, amount)] += 1


class _Family(Generic[S]):
    """A metric family: its name, help, label names and series by label values."""

    kind = ""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], S] = {}

    def _new(self) -> S:
        raise NotImplementedError

    def labels(self, *values: object) -> S:
        """The series of these label values (made on first use, then shared)."""
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {values}")
        key = tuple(str(v) for v in values)
        with self._lock:
            found = self._series.get(key)
            if found is None:
                found = self._series[key] = self._new()
        return found

    def _labelled(self) -> Iterator[tuple[dict[str, str], S]]:
        # a copy first: a scrape from another thread may run while a series is added
        for key, series in list(self._series.items()):
            yield dict(zip(self.labelnames, key, strict=True)), series

    def metric(self) -> Metric:
        """An empty ``prometheus_client`` family as the registry describes it."""
        return Metric(self.name, self.documentation, self.kind)


class CounterFamily(_Family[CounterSeries]):
    """A labelled counter family (``prometheus_client.Counter`` with labels)."""

    kind = "counter"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        """``name`` ends with ``_total``; the family's own name is without it."""
        super().__init__(name.removesuffix("_total"), documentation, labelnames)

    def _new(self) -> CounterSeries:
        return CounterSeries()

    def collect(self) -> Metric:
        """The family with every series' ``_total`` (and ``_created``) sample."""
        metric = self.metric()
        created = _client._use_created
        for labels, series in self._labelled():
            metric.add_sample(self.name + "_total", labels, series.value)
            if created:
                metric.add_sample(self.name + "_created", labels, series.created)
        return metric


class GaugeFamily(_Family[GaugeSeries]):
    """A labelled gauge family (``prometheus_client.Gauge`` with labels)."""

    kind = "gauge"

    def _new(self) -> GaugeSeries:
        return GaugeSeries()

    def collect(self) -> Metric:
        """The family with every series' value (functions are called now)."""
        metric = self.metric()
        for labels, series in self._labelled():
            metric.add_sample(self.name, labels, series.get())
        return metric


class HistogramFamily(_Family[HistogramSeries]):
    """A labelled histogram family (``prometheus_client.Histogram`` with labels)."""

    kind = "histogram"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 buckets: Sequence[float]) -> None:
        """Buckets are ascending upper bounds; +Inf is added when missing."""
        super().__init__(name, documentation, labelnames)
        bounds = [float(b) for b in buckets]
        if bounds != sorted(bounds):
            raise ValueError(f"{name}: buckets not in sorted order")
        if not bounds or bounds[-1] != float("inf"):
            bounds.append(float("inf"))
        self.bounds = tuple(bounds)
        # the very function prometheus_client labels its buckets with, so the text is the same
        self._le = tuple(floatToGoString(b) for b in bounds)  # type: ignore[no-untyped-call]

    def _new(self) -> HistogramSeries:
        return HistogramSeries(self.bounds)

    def collect(self) -> Metric:
        """The family with cumulative ``_bucket`` samples, ``_count``, ``_sum``, ``_created``."""
        metric = self.metric()
        created = _client._use_created
        name = self.name
        for labels, series in self._labelled():
            total = 0.0
            for le, count in zip(self._le, list(series.counts), strict=True):
                total += count
                metric.add_sample(name + "_bucket", {**labels, "le": le}, total)
            metric.add_sample(name + "_count", labels, total)
            if self.bounds[0] >= 0:
                metric.add_sample(name + "_sum", labels, series.sum)
            if created:
                metric.add_sample(name + "_created", labels, series.created)
        return metric


Family = CounterFamily | GaugeFamily | HistogramFamily


@dataclass(frozen=True, eq=False)
class RuntimeMetrics:
    """The metric families of one registry (see :func:`runtime_metrics`).

    Also the ``prometheus_client`` collector registered in that registry: a scrape renders
    every family, in this order.
    """

    registry: CollectorRegistry
    workqueue_depth: GaugeFamily
    workqueue_adds: CounterFamily
    workqueue_queue_duration: HistogramFamily
    workqueue_work_duration: HistogramFamily
    workqueue_unfinished_work: GaugeFamily
    workqueue_longest_running: GaugeFamily
    workqueue_retries: CounterFamily
    reconcile_total: CounterFamily
    reconcile_errors: CounterFamily
    terminal_reconcile_errors: CounterFamily
    reconcile_time: HistogramFamily
    max_concurrent_reconciles: GaugeFamily
    active_workers: GaugeFamily
    watch_events: CounterFamily
    watch_restarts: CounterFamily
    watch_relists: CounterFamily
    decode_errors: CounterFamily

    def families(self) -> list[Family]:
        """Every family, in exposition order."""
        return [getattr(self, f.name) for f in fields(self) if f.name != "registry"]

    def collect(self) -> Iterator[Metric]:
        """Each family with its current samples (the registry calls this at scrape time)."""
        for family in self.families():
            yield family.collect()

    def describe(self) -> Iterator[Metric]:
        """Each family without samples (the registry checks names with it)."""
        for family in self.families():
            yield family.metric()


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, RuntimeMetrics] = (
    weakref.WeakKeyDictionary()
)
_MADE = threading.Lock()


def runtime_metrics(registry: CollectorRegistry | None = None) -> RuntimeMetrics:
    """The runtime's metric families in ``registry`` (default :data:`REGISTRY`), made once."""
    reg = REGISTRY if registry is None else registry
    found = _BY_REGISTRY.get(reg)
    if found is not None:
        return found
    with _MADE:
        found = _BY_REGISTRY.get(reg)
        if found is None:
            found = _make(reg)
            reg.register(found)  # raises ValueError when a name is taken in ``reg``
            _BY_REGISTRY[reg] = found
    return found


def _make(reg: CollectorRegistry) -> RuntimeMetrics:
    return RuntimeMetrics(
        registry=reg,
        workqueue_depth=GaugeFamily("workqueue_depth", "Current depth of workqueue", _WQ),
        workqueue_adds=CounterFamily(
            "workqueue_adds_total", "Total number of adds handled by workqueue", _WQ),
        workqueue_queue_duration=HistogramFamily(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested", _WQ,
            WORKQUEUE_BUCKETS),
        workqueue_work_duration=HistogramFamily(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.", _WQ,
            WORKQUEUE_BUCKETS),
        workqueue_unfinished_work=GaugeFamily(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been "
            "observed by work_duration. Large values indicate stuck threads.", _WQ),
        workqueue_longest_running=GaugeFamily(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            _WQ),
        workqueue_retries=CounterFamily(
            "workqueue_retries_total", "Total number of retries handled by workqueue", _WQ),
        reconcile_total=CounterFamily(
            "controller_runtime_reconcile_total", "Total number of reconciliations per controller",
            ("controller", "result")),
        reconcile_errors=CounterFamily(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller", ("controller",)),
        terminal_reconcile_errors=CounterFamily(
            "controller_runtime_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors per controller", ("controller",)),
        reconcile_time=HistogramFamily(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller", ("controller",),
            RECONCILE_BUCKETS),
        max_concurrent_reconciles=GaugeFamily(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller", ("controller",)),
        active_workers=GaugeFamily(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller", ("controller",)),
        watch_events=CounterFamily(
            "kuar_watch_events_total", "Watch events received, by resource and event type",
            ("resource", "type")),
        watch_restarts=CounterFamily(
            "kuar_watch_restarts_total",
            "Watch streams restarted, by resource and reason (closed, inactive, error, gone)",
            ("resource", "reason")),
        watch_relists=CounterFamily(
            "kuar_watch_relists_total", "Full lists (initial and after 410 Gone) by resource",
            ("resource",)),
        decode_errors=CounterFamily(
            "kuar_decode_errors_total",
            "Objects skipped because the transform or decode hook raised", ("resource",)),
    )
