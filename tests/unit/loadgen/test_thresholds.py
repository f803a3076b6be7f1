"""Threshold grammar and verdicts, shared by kuar-loadgen --threshold and the LoadTest."""

from __future__ import annotations

import pytest

from kuar_loadgen.result import LoadResult
from kuar_loadgen.thresholds import ThresholdError, evaluate, parse_threshold, parse_thresholds


def _result(**kw: object) -> LoadResult:
    base: dict[str, object] = dict(
        requests=1000, responses=990, errors=10, target_rps=100.0, achieved_rps=99.0,
        duration_s=10.0, elapsed_s=10.0, started_at=0.0,
        latency_ms={"p50": 5.0, "p90": 20.0, "p99": 60.0, "p999": 90.0, "max": 100.0,
                    "mean": 8.0},
        lateness_ms={"p50": 0.1, "p99": 1.0, "max": 2.0})
    base.update(kw)
    return LoadResult(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "metric", "op", "value"), [
    ("p99 < 50ms", "p99", "<", 50.0), ("p99<0.5s", "p99", "<", 500.0),
    ("p95 <= 250us", "p95", "<=", 0.25), ("errorRate < 1%", "errorRate", "<", 1.0),
    ("achievedRate > 98%", "achievedRate", ">", 98.0), ("max < 2", "max", "<", 2.0),
])
def test_grammar(text: str, metric: str, op: str, value: float) -> None:
    t = parse_threshold(text)
    assert (t.metric, t.op, t.value) == (metric, op, value)


@pytest.mark.parametrize("bad", ["p99 << 5", "p98 < 5ms", "errorRate < 5ms", "p99 < 5%",
                                 "errorRate < 101%", "", "p99 < -1ms", "x" * 65])
def test_bad_thresholds_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(ThresholdError):
        parse_threshold(bad)


def test_bad_ones_are_named_by_index() -> None:
    with pytest.raises(ThresholdError, match=r"thresholds\[1\]"):
        parse_thresholds(["p99 < 5ms", "nope"])


def test_verdicts_on_a_result() -> None:
    r = _result()
    verdict = evaluate(parse_thresholds(["p99 < 50ms", "errorRate < 2%",
                                         "achievedRate > 98%"]), r)
    assert not verdict.ok
    assert [t.text for t, _ in verdict.crossed] == ["p99 < 50ms"]
    assert verdict.describe() == "p99 < 50ms crossed (observed 60)"
    assert evaluate(parse_thresholds(["errorRate < 1%"]), r).ok is False  # 1.0 is not < 1
    assert evaluate(parse_thresholds(["errorRate <= 1%"]), r).ok
    # nothing answered: a latency threshold cannot be shown to hold
    assert not evaluate(parse_thresholds(["p99 < 50ms"]), _result(responses=0)).ok
