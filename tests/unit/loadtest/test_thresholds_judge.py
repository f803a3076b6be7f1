"""A LoadTest's thresholds on its merged result: ThresholdsMet and ThresholdsCrossed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kuar_loadgen.result import LoadResult
from kuar_loadtest.api.v2 import LoadTest
from kuar_loadtest.status import RunState
from kuar_loadtest.thresholds import judge


def _lt(**spec: Any) -> LoadTest:
    return LoadTest.decode({"apiVersion": "beta.kuar.com/v2", "kind": "LoadTest",
                            "metadata": {"name": "t", "namespace": "n"},
                            "spec": {"target": {"service": "web"},
                                     "load": {"requestsPerSecond": 10}, **spec}})


RESULT = LoadResult(requests=100, responses=100, errors=0, target_rps=10.0, achieved_rps=10.0,
                    duration_s=10.0, elapsed_s=10.0, started_at=0.0,
                    latency_ms={"p50": 5.0, "p90": 9.0, "p99": 80.0, "p999": 90.0,
                                "max": 95.0, "mean": 7.0},
                    lateness_ms={"p50": 0.0, "p99": 0.0, "max": 0.0})
DONE = RunState("Succeeded", "Completed", "ok", {}, RESULT, results_complete=True)


def test_no_thresholds_no_condition() -> None:
    assert judge(_lt(), DONE) == (DONE, None)


def test_held_thresholds_keep_the_phase() -> None:
    state, cond = judge(_lt(thresholds=["p99 < 100ms", "errorRate < 1%"]), DONE)
    assert state is DONE and cond is not None and cond[:3] == (
        "ThresholdsMet", "True", "ThresholdsHeld")


def test_a_crossed_threshold_fails_the_run() -> None:
    state, cond = judge(_lt(thresholds=["p99 < 50ms"]), DONE)
    assert (state.phase, state.reason) == ("Failed", "ThresholdsCrossed")
    assert cond == ("ThresholdsMet", "False", "ThresholdsCrossed",
                    "p99 < 50ms crossed (observed 80)")
    aborted = replace(DONE, merged=replace(RESULT, aborted="threshold p99 < 50ms crossed"))
    assert "stopped early" in judge(_lt(thresholds=["p99 < 50ms"]), aborted)[0].message


def test_no_result_or_a_bad_threshold_is_unknown() -> None:
    failed = RunState("Failed", "JobFailed", "boom")
    assert judge(_lt(thresholds=["p99 < 5ms"]), failed) == (
        failed, ("ThresholdsMet", "Unknown", "NoResults", "the run produced no result to judge"))
    state, cond = judge(_lt(thresholds=["nope"]), DONE)
    assert state is DONE and cond is not None and cond[2] == "InvalidThreshold"
