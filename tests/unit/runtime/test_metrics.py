"""The runtime's metric families render exactly as prometheus_client's own classes did."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    disable_created_metrics,
    enable_created_metrics,
    generate_latest,
)

from kuar.runtime.log import new_reconcile_id
from kuar.runtime.metrics import (
    RECONCILE_BUCKETS,
    WORKQUEUE_BUCKETS,
    CounterFamily,
    GaugeFamily,
    HistogramFamily,
    runtime_metrics,
)


class Families:
    """A collector of a few families (as RuntimeMetrics is, for the runtime's)."""

    def __init__(self, *families: CounterFamily | GaugeFamily | HistogramFamily) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.collect()

    def describe(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.metric()


@pytest.fixture(params=["created", "no-created"])
def created(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(time, "time", lambda: 1764489600.25)  # both sides stamp _created
    if request.param == "no-created":
        disable_created_metrics()
    try:
        yield
    finally:
        enable_created_metrics()


@pytest.mark.usefixtures("created")
def test_families_render_the_text_prometheus_client_renders() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    labels = ("name", "controller")
    counter = CounterFamily("x_adds_total", "Adds.", labels)
    gauge = GaugeFamily("x_depth", "Depth \\ with\nescapes.", labels)
    function = GaugeFamily("x_running_seconds", "Function.", labels)
    latency = HistogramFamily("x_latency_seconds", "Latency.", labels, WORKQUEUE_BUCKETS)
    reconcile = HistogramFamily("x_time_seconds", "Time.", ("controller",), RECONCILE_BUCKETS)
    unused = CounterFamily("x_unused_total", "Never labelled.", ("controller",))
    ours.register(Families(counter, gauge, function, latency, reconcile, unused))
    p_counter = Counter("x_adds_total", "Adds.", labels, registry=theirs)
    p_gauge = Gauge("x_depth", "Depth \\ with\nescapes.", labels, registry=theirs)
    p_function = Gauge("x_running_seconds", "Function.", labels, registry=theirs)
    p_latency = Histogram("x_latency_seconds", "Latency.", labels, buckets=WORKQUEUE_BUCKETS,
                          registry=theirs)
    p_reconcile = Histogram("x_time_seconds", "Time.", ("controller",),
                            buckets=RECONCILE_BUCKETS, registry=theirs)
    Counter("x_unused_total", "Never labelled.", ("controller",), registry=theirs)

    for family, theirs_family in ((counter, p_counter), (gauge, p_gauge)):
        family.labels("a", "a").inc()
        theirs_family.labels("a", "a").inc()
        family.labels("b", "b").inc(2.5)
        theirs_family.labels("b", "b").inc(2.5)
    counter.labels("a", "a").value += 1  # the hot paths' form
    p_counter.labels("a", "a").inc()
    gauge.labels("a", "a").dec(3)
    p_gauge.labels("a", "a").dec(3)
    gauge.labels("c", "c").set(7)
    p_gauge.labels("c", "c").set(7)
    function.labels("q", "q").set_function(lambda: 4.5)
    p_function.labels("q", "q").set_function(lambda: 4.5)
    # on a bound (inclusive), between bounds, beyond the last bound, zero
    for value in (1e-8, 3e-7, 0.0, 1e-3, 1e-3, 5000.0):
        latency.labels("a", "a").observe(value)
        p_latency.labels("a", "a").observe(value)
    for value in (0.004, 0.005, 0.0051, 60.0, 61.0, 1.1):
        reconcile.labels("c1").observe(value)
        p_reconcile.labels("c1").observe(value)
    reconcile.labels("c2")
    p_reconcile.labels("c2")

    text = generate_latest(ours).decode()
    assert text == generate_latest(theirs).decode()
    assert 'x_latency_seconds_bucket{controller="a",le="1e-08",name="a"} 2.0' in text
    assert 'x_time_seconds_bucket{controller="c1",le="+Inf"} 6.0' in text
    assert ours.get_sample_value("x_adds_total", {"name": "a", "controller": "a"}) == 2


def test_label_values_are_strings_and_series_are_shared() -> None:
    family = CounterFamily("y_total", "Y.", ("controller", "result"))
    family.labels("c", 1).inc()
    family.labels("c", "1").inc()
    assert family.labels("c", "1").value == 2
    with pytest.raises(ValueError, match="expected labels"):
        family.labels("c")
    with pytest.raises(ValueError, match="non-negative"):
        family.labels("c", "1").inc(-1)
    with pytest.raises(ValueError, match="sorted"):
        HistogramFamily("z_seconds", "Z.", (), (1.0, 0.5))


def test_runtime_metrics_keep_controller_runtimes_names_and_labels() -> None:
    registry = CollectorRegistry()
    m = runtime_metrics(registry)
    assert runtime_metrics(registry) is m
    families = {metric.name: (metric.type, metric) for metric in registry.collect()}
    wq = ("name", "controller")
    assert [(f.name, f.kind, f.labelnames) for f in m.families()] == [
        ("workqueue_depth", "gauge", wq),
        ("workqueue_adds", "counter", wq),
        ("workqueue_queue_duration_seconds", "histogram", wq),
        ("workqueue_work_duration_seconds", "histogram", wq),
        ("workqueue_unfinished_work_seconds", "gauge", wq),
        ("workqueue_longest_running_processor_seconds", "gauge", wq),
        ("workqueue_retries", "counter", wq),
        ("controller_runtime_reconcile", "counter", ("controller", "result")),
        ("controller_runtime_reconcile_errors", "counter", ("controller",)),
        ("controller_runtime_terminal_reconcile_errors", "counter", ("controller",)),
        ("controller_runtime_reconcile_time_seconds", "histogram", ("controller",)),
        ("controller_runtime_max_concurrent_reconciles", "gauge", ("controller",)),
        ("controller_runtime_active_workers", "gauge", ("controller",)),
        ("kuar_watch_events", "counter", ("resource", "type")),
        ("kuar_watch_restarts", "counter", ("resource", "reason")),
        ("kuar_watch_relists", "counter", ("resource",)),
        ("kuar_decode_errors", "counter", ("resource",)),
    ]
    assert list(families) == [f.name for f in m.families()]
    taken = CollectorRegistry()
    Gauge("workqueue_depth", "Someone else's.", registry=taken)
    with pytest.raises(ValueError, match="workqueue_depth"):
        runtime_metrics(taken)


def test_a_scrape_from_another_thread_sees_consistent_histograms() -> None:
    registry = CollectorRegistry()
    m = runtime_metrics(registry)
    series = m.reconcile_time.labels("t")
    stop = threading.Event()
    scrapes: list[str] = []
    errors: list[BaseException] = []

    def scrape() -> None:
        try:
            while not stop.is_set():
                scrapes.append(generate_latest(registry).decode())
        except BaseException as exc:  # reported by the test below, not lost in the thread
            errors.append(exc)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for i in range(100_000):
            series.observe(i % 70)
            if i % 10 == 0:  # series made while a scrape iterates over them
                m.reconcile_errors.labels(f"new-{i}")
    finally:
        stop.set()
        scraper.join()
    assert not errors
    assert scrapes
    counts = []
    for text in scrapes:
        lines = dict(line.rsplit(" ", 1) for line in text.splitlines()
                     if line.startswith("controller_runtime_reconcile_time_seconds")
                     and 'controller="t"' in line)
        count = float(lines['controller_runtime_reconcile_time_seconds_count{controller="t"}'])
        inf = float(lines['controller_runtime_reconcile_time_seconds_bucket'
                          '{controller="t",le="+Inf"}'])
        assert count == inf
        counts.append(count)
    assert counts == sorted(counts)
    assert registry.get_sample_value(
        "controller_runtime_reconcile_time_seconds_count", {"controller": "t"}) == 100_000


def test_reconcile_ids_are_unique_uuid_shaped_and_differ_after_fork() -> None:
    ids = [new_reconcile_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    parsed = uuid.UUID(ids[0])
    assert str(parsed) == ids[0] and parsed.version == 8 and parsed.variant == uuid.RFC_4122
    assert len({i[:24] for i in ids}) == 1, "one process prefix"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, then leave at once
        os.write(write, new_reconcile_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    assert uuid.UUID(child).version == 8
    assert child[:24] != ids[0][:24], "a forked child draws its own prefix"
