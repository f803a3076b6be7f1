"""The report's v2 plots: requested vs achieved, latency and errors over time, thresholds."""

from __future__ import annotations

from pathlib import Path

from kuar_loadgen.result import LoadResult
from kuar_loadtest.report import (
    error_series,
    latency_series,
    requested_series,
    threshold_lines,
    write_html,
)

LT = {"metadata": {"name": "r", "namespace": "n"},
      "spec": {"target": {"service": "web"},
               "load": {"startRate": 100, "stages": [{"duration": "2s", "target": 100},
                                                     {"duration": "2s", "target": 300}]},
               "thresholds": ["p99 < 50ms", "errorRate < 1%", "achievedRate > 98%", "bad"]}}
RESULT = LoadResult(
    requests=600, responses=590, errors=10, target_rps=150.0, achieved_rps=147.5,
    duration_s=4.0, elapsed_s=4.0, started_at=0.0,
    latency_ms={"p50": 5.0, "p90": 9.0, "p99": 40.0, "p999": 60.0, "max": 70.0, "mean": 6.0},
    lateness_ms={"p50": 0.1, "p99": 1.0, "max": 2.0},
    timeline={"interval_s": 1, "responses": [100, 100, 150, 240], "errors": [0, 0, 10, 0],
              "sent": [100, 100, 150, 250], "p50_ms": [4.0, 5.0, 6.0, 5.0],
              "p99_ms": [30.0, 35.0, 60.0, 40.0]})


def test_series() -> None:
    assert requested_series(LT) == [(0.0, 100.0), (1.0, 100.0), (2.0, 150.0), (3.0, 250.0)]
    assert latency_series(RESULT)[2] == (2.0, 6.0, 60.0)
    assert error_series(RESULT)[2] == (2.0, 100.0 * 10 / 160)
    assert [t.text for t in threshold_lines(LT)] == ["p99 < 50ms", "errorRate < 1%",
                                                     "achievedRate > 98%"]


def test_the_html_report_has_the_four_plots(tmp_path: Path) -> None:
    page = write_html(tmp_path / "r.html", LT, RESULT).read_text()
    for title in ("Latency", "Rate", "Latency over time", "Errors over time"):
        assert f"<h2>{title}</h2>" in page
    assert page.count("data:image/png;base64,") == 4
