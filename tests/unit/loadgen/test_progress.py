"""Live progress: the terminal bar's text and the Prometheus exposition of a snapshot."""

from __future__ import annotations

import io

from prometheus_client import generate_latest
from rich.console import Console

from kuar_loadgen.progress import MetricsExporter, Observers, ProgressBar
from kuar_loadgen.runner import Progress

SNAP = Progress(elapsed=2.0, duration=4.0, total=400, sent=200, responses=198, errors=3,
                outstanding=2, p50_ms=1.5, p99_ms=12.25, target_rps=100.0)


def test_progress_bar_shows_counts_rate_and_p99() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with ProgressBar(console) as bar:
        bar(SNAP)
    text = out.getvalue()
    assert "50%" in text
    assert "sent 200/400" in text
    assert "99/100 rps" in text
    assert "errors 3" in text
    assert "p99 12.2 ms" in text or "p99 12.3 ms" in text


def test_metrics_exporter_exposes_the_latest_snapshot() -> None:
    exporter = MetricsExporter(port=0)
    try:
        seen: list[Progress] = []
        Observers([exporter, seen.append])(SNAP)
        assert seen == [SNAP]
        text = generate_latest(exporter.registry).decode()
        assert "kuar_loadgen_requests_sent_total 200.0" in text
        assert "kuar_loadgen_responses_total 198.0" in text
        assert "kuar_loadgen_errors_total 3.0" in text
        assert "kuar_loadgen_outstanding_requests 2.0" in text
        assert 'kuar_loadgen_latency_seconds{quantile="0.99"} 0.01225' in text
        assert exporter.port > 0
    finally:
        exporter.close()
