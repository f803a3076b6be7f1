"""Results: recording from due time, merging processes and pods, fitting a termination message."""

from __future__ import annotations

import json
import random

import pytest

from kuar_loadgen.recorder import Recorder
from kuar_loadgen.result import (
    TERMINATION_MESSAGE_LIMIT,
    LoadResult,
    coarsen_timeline,
    compact,
    decode_histogram,
    merge_results,
)

T0 = 1000.0  # a monotonic start time


def _result(latencies_s: list[float], *, started_at: float = 1.7e9, status: int = 200,
            duration: float = 10.0, spread: float = 10.0) -> LoadResult:
    """A recorder that saw one response per latency, due times spread over ``spread`` s."""
    rec = Recorder(T0)
    n = len(latencies_s)
    for i, lat in enumerate(latencies_s):
        due = T0 + spread * i / n
        rec.sent_late(due, due)
        rec.response(due, due + lat, status)
    return rec.result(requests=n, target_rps=n / duration, duration=duration,
                      started_at=started_at, end=T0 + duration)


def test_latency_is_measured_from_the_due_time_not_the_send_time() -> None:
    rec = Recorder(T0)
    # Due at 1.0 s, written 0.5 s late (waiting for a connection), answered 10 ms after that.
    rec.sent_late(T0 + 1.0, T0 + 1.5)
    rec.response(T0 + 1.0, T0 + 1.51, 200)
    r = rec.result(requests=1, target_rps=1, duration=2, started_at=0, end=T0 + 2)
    assert r.latency_ms["max"] == pytest.approx(510, rel=0.002)
    assert r.lateness_ms["max"] == pytest.approx(500, rel=0.002)


def test_error_statuses_are_responses_and_errors_and_transport_failures_only_errors() -> None:
    rec = Recorder(T0)
    for status in (200, 200, 404, 503):
        rec.response(T0, T0 + 0.01, status)
    rec.error(T0 + 0.5, "timeout")
    rec.error(T0 + 1.5, "connect")
    r = rec.result(requests=6, target_rps=6, duration=2, started_at=0, end=T0 + 2)
    assert (r.requests, r.responses, r.errors) == (6, 4, 4)
    assert r.status_codes == {"200": 2, "404": 1, "503": 1}
    assert r.error_kinds == {"http_4xx": 1, "http_5xx": 1, "timeout": 1, "connect": 1}
    assert r.errors == sum(r.error_kinds.values())
    assert r.responses + rec.failed == r.requests
    assert r.timeline == {"interval_s": 1, "responses": [4, 0], "errors": [3, 1],
                          "sent": [0, 0]}


def test_achieved_rate_counts_responses_over_the_run_or_the_drain_if_longer() -> None:
    r = _result([0.001] * 1000, duration=10.0)
    assert r.achieved_rps == pytest.approx(100, rel=1e-3)
    slow = _result([2.0] * 1000, duration=10.0)  # the last answer comes at ~12 s
    assert slow.elapsed_s == pytest.approx(11.99, abs=0.01)
    assert slow.achieved_rps == pytest.approx(1000 / 11.99, rel=1e-3)


def test_take_recent_gives_the_last_interval_percentiles_and_forgets_them() -> None:
    rec = Recorder(T0)
    for ms in range(1, 101):
        rec.response(T0, T0 + ms / 1000, 200)
    p50, p99 = rec.take_recent()
    assert p50 == pytest.approx(50_000, abs=2)
    assert p99 == pytest.approx(99_000, abs=2)
    assert rec.take_recent() == (0, 0)


def test_merge_sums_counts_and_recomputes_percentiles_from_the_merged_histogram() -> None:
    fast = _result([0.001] * 900)
    slow = _result([0.100] * 100, status=503)
    m = merge_results([fast, slow])
    assert (m.requests, m.responses, m.errors) == (1000, 1000, 100)
    assert m.status_codes == {"200": 900, "503": 100}
    assert m.error_kinds == {"http_5xx": 100}
    assert m.target_rps == pytest.approx(100)
    assert m.latency_ms["p50"] == pytest.approx(1.0, rel=0.01)
    assert m.latency_ms["p90"] == pytest.approx(1.0, rel=0.01)
    assert m.latency_ms["p99"] == pytest.approx(100.0, rel=0.01)  # not an average of p99s
    assert decode_histogram(m.histogram).get_total_count() == 1000
    assert (m.shards, m.processes) == (2, 2)
    assert merge_results([fast, slow], as_shards=False).shards == 1


def test_merge_is_order_independent() -> None:
    rs = [_result([random.Random(i).uniform(0.001, 0.2) for _ in range(300)]) for i in range(3)]
    a = merge_results(rs).to_dict()
    b = merge_results(rs[::-1]).to_dict()
    assert a == b


def test_merge_aligns_timelines_by_start_time_and_widest_interval() -> None:
    early = _result([0.001] * 40, started_at=100.0, spread=4)  # 10/s in seconds 0..3
    late = _result([0.001] * 20, started_at=102.0, spread=2)  # 10/s, two seconds later
    m = merge_results([early, late])
    assert m.timeline["responses"] == [10, 10, 20, 20]
    assert m.started_at == 100.0
    wide = LoadResult.from_dict({**late.to_dict(),
                                 "timeline": coarsen_timeline(late.timeline)})
    m2 = merge_results([early, wide])
    assert m2.timeline == {"interval_s": 2, "responses": [20, 40], "errors": [0, 0],
                           "sent": [20, 40]}


def test_result_json_round_trips_and_refuses_unknown_versions() -> None:
    r = _result([0.002, 0.004, 0.5])
    again = LoadResult.from_json(r.to_json())
    assert again.to_dict() == r.to_dict()
    with pytest.raises(ValueError, match="version"):
        LoadResult.from_dict({**r.to_dict(), "version": 99})
    with pytest.raises(ValueError, match="misses"):
        LoadResult.from_dict({"version": 1})


def test_required_fields_are_present() -> None:
    d = json.loads(_result([0.01]).to_json())
    for key in ("version", "requests", "errors", "achieved_rps", "histogram", "timeline",
                "status_codes", "error_kinds"):
        assert key in d
    assert set(d["latency_ms"]) >= {"p50", "p90", "p99", "max"}


def test_compact_leaves_small_results_alone() -> None:
    r = _result([0.001, 0.002])
    assert compact(r) is r


def test_compact_fits_an_hour_long_wide_distribution_into_a_termination_message() -> None:
    rng = random.Random(7)
    lat = [rng.lognormvariate(-5, 1.6) for _ in range(100_000)]  # 0.1 ms .. seconds
    r = _result(lat, duration=3600.0, spread=3600.0)
    assert r.size() > TERMINATION_MESSAGE_LIMIT
    c = compact(r)
    assert c.size() <= TERMINATION_MESSAGE_LIMIT
    # Counts and percentiles are exact; the histogram still merges and agrees within 10 %.
    assert (c.requests, c.responses, c.errors, c.latency_ms) == (
        r.requests, r.responses, r.errors, r.latency_ms)
    assert c.histogram
    h = decode_histogram(c.histogram)
    assert h.get_total_count() == 100_000
    assert h.get_value_at_percentile(99) / 1000 == pytest.approx(r.latency_ms["p99"], rel=0.1)
    assert sum(c.timeline["responses"]) == 100_000
    assert c.timeline["interval_s"] > 1


def test_compact_drops_detail_in_order_until_it_fits_any_limit() -> None:
    r = _result([0.001 * (i % 97 + 1) for i in range(5000)], duration=600.0, spread=600.0)
    c = compact(r, limit=700)
    assert c.size() <= 700
    assert c.requests == 5000
    assert c.latency_ms == r.latency_ms
