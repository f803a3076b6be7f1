"""Live progress of a run: a rich progress bar on a terminal, Prometheus metrics in a pod.

Place in the pipeline: both are :data:`~kuar_loadgen.runner.Observer` s that
:func:`kuar_loadgen.runner.run` calls with a :class:`~kuar_loadgen.runner.Progress` snapshot a
few times a second; :class:`Observers` fans one snapshot out to several.

Metrics (names follow Prometheus conventions; counters are cumulative since the start):
``kuar_loadgen_requests_sent_total``, ``kuar_loadgen_responses_total``,
``kuar_loadgen_errors_total``, ``kuar_loadgen_outstanding_requests``,
``kuar_loadgen_target_requests_per_second``, ``kuar_loadgen_latency_seconds{quantile}``
(0.5 and 0.99, the largest over the pod's processes) and ``kuar_loadgen_elapsed_seconds``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from kuar_loadgen.runner import Observer
from kuar_loadgen.runner import Progress as Snapshot


class Observers:
    """Calls several observers with each snapshot."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self.observers = list(observers)

    def __call__(self, snap: Snapshot) -> None:
        for o in self.observers:
            o(snap)


class ProgressBar:
    """A rich progress bar over the run's duration with live counts; use as a context manager."""

    def __init__(self, console: Console | None = None) -> None:
        self.progress = Progress(
            TextColumn("[bold]load"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            TimeRemainingColumn(), TextColumn("{task.fields[stats]}"),
            console=console or Console(stderr=True), transient=False,
            # Rendering holds the GIL; with one worker process in this process, a few
            # refreshes a second keep the bar live without delaying requests.
            refresh_per_second=4)
        self.task = self.progress.add_task("load", total=1.0, stats="starting")

    def __enter__(self) -> ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, snap: Snapshot) -> None:
        done = min(1.0, max(0.0, snap.elapsed / snap.duration))
        rate = snap.responses / snap.elapsed if snap.elapsed > 0 else 0.0
        stats = (f"sent {snap.sent}/{snap.total}  {rate:,.0f}/{snap.target_rps:,.0f} rps  "
                 f"errors {snap.errors}  p99 {snap.p99_ms:,.1f} ms  "
                 f"outstanding {snap.outstanding}")
        self.progress.update(self.task, completed=done, stats=stats)


class MetricsExporter:
    """Serves the latest snapshot as Prometheus metrics over HTTP."""

    def __init__(self, *, port: int, address: str = "127.0.0.1") -> None:
        self._lock = threading.Lock()
        self._snap: Snapshot | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self.server, self.thread = start_http_server(port, addr=address, registry=self.registry)

    @property
    def port(self) -> int:
        """The port actually bound (useful when asked for port 0)."""
        return int(self.server.server_address[1])

    def __call__(self, snap: Snapshot) -> None:
        with self._lock:
            self._snap = snap

    def close(self) -> None:
        """Stop the HTTP server."""
        self.server.shutdown()
        self.server.server_close()

    def collect(self) -> Iterator[Any]:
        """Prometheus collector protocol: the metrics of the latest snapshot."""
        with self._lock:
            s = self._snap
        if s is None:
            return
        for name, doc, value in (
                ("kuar_loadgen_requests_sent", "Requests written to a connection.", s.sent),
                ("kuar_loadgen_responses", "Complete HTTP responses.", s.responses),
                ("kuar_loadgen_errors", "Failed requests (transport or 4xx/5xx).", s.errors)):
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily("kuar_loadgen_outstanding_requests",
                                "Requests waiting for a connection or in flight.",
                                value=s.outstanding)
        yield GaugeMetricFamily("kuar_loadgen_target_requests_per_second",
                                "Arrival rate this pod issues.", value=s.target_rps)
        yield GaugeMetricFamily("kuar_loadgen_elapsed_seconds", "Seconds since the start.",
                                value=max(0.0, s.elapsed))
        lat = GaugeMetricFamily("kuar_loadgen_latency_seconds",
                                "Latency from due time, largest over processes.",
                                labels=["quantile"])
        lat.add_metric(["0.5"], s.p50_ms / 1000)
        lat.add_metric(["0.99"], s.p99_ms / 1000)
        yield lat
