"""A run's state from its Job and pods (pure rules)."""

from __future__ import annotations

from typing import Any

from kuar.models.batch.v1 import Job, JobSpec
from kuar.models.core.v1 import Pod
from kuar_loadgen.result import LoadResult, new_histogram
from kuar_loadtest.status import run_state, summarize


def _result(latencies_ms: list[float], codes: dict[str, int], errors: dict[str, int]) -> LoadResult:
    hist = new_histogram()
    for ms in latencies_ms:
        hist.record_value(int(ms * 1000))
    responses = sum(codes.values())
    return LoadResult(
        requests=responses + sum(errors.values()), responses=responses,
        errors=sum(errors.values()), target_rps=100, achieved_rps=99.5, duration_s=10,
        elapsed_s=10, started_at=1000.0, latency_ms={"p50": 1, "p90": 2, "p99": 3, "max": 4},
        lateness_ms={"p99": 0.1}, status_codes=codes, error_kinds=errors,
        histogram=hist.encode().decode() if latencies_ms else "",
    )


def _job(*conditions: str) -> Job:
    return Job.decode({"status": {
        "active": 0 if conditions else 2,
        "conditions": [{"type": c, "status": "True", "reason": "R", "message": "m"}
                       for c in conditions]}})


def _pod(name: str, phase: str, message: str = "", code: int = 0, **status: Any) -> Pod:
    return Pod.decode({"metadata": {"name": name}, "status": {
        "phase": phase, **status,
        "containerStatuses": [{
            "name": "loadgen", "image": "i", "imageID": "", "ready": False, "restartCount": 0,
            "state": {"terminated": {
                "exitCode": code, "message": message,
                "reason": "Completed" if code == 0 else "Error",
            }}}],
    }})


def test_running_until_the_job_ends() -> None:
    assert run_state(_job(), []).phase == "Running"


def test_completed_job_merges_every_pods_result() -> None:
    a = _result([10, 20], {"200": 2}, {})
    b = _result([30, 40], {"200": 1, "503": 1}, {"timeout": 1})
    state = run_state(_job("Complete"), [_pod("w-0", "Succeeded", a.to_json()),
                                         _pod("w-1", "Succeeded", b.to_json())])
    assert state.phase == "Succeeded" and state.results is not None
    assert state.results["requests"] == 5
    assert state.results["successes"] == 3 and state.results["errors"] == 2
    assert state.results["errorsByCode"] == {"503": 1, "timeout": 1}
    assert state.results["achievedRps"] == 199.0  # two shards' rates add up
    assert 39.0 <= state.results["latencyMs"]["max"] <= 40.1  # from the merged histogram


def test_no_answer_at_all_is_target_unreachable() -> None:
    dead = _result([], {}, {"connect": 50})
    state = run_state(_job("Complete"), [_pod("w-0", "Succeeded", dead.to_json())])
    assert state.phase == "Failed" and state.reason == "TargetUnreachable"
    assert "connect: 50" in state.message


def test_failed_pod_reason_is_reported() -> None:
    pods = [_pod("w-0", "Failed", "Traceback: boom", code=1)]
    state = run_state(_job("Failed"), pods)
    assert state.phase == "Failed" and state.reason == "Error"
    assert "worker pod w-0 exited with code 1" in state.message and "boom" in state.message
    unsupported = [_pod("w-0", "Failed", code=128, reason="UnsupportedImage",
                        message="cannot run nginx")]
    state = run_state(_job("Failed"), unsupported)
    assert state.reason == "UnsupportedImage" and "cannot run nginx" in state.message


def test_job_failure_without_failed_pods_uses_the_job_condition() -> None:
    state = run_state(_job("Failed"), [])
    assert state.phase == "Failed" and state.reason == "R"


def test_unreadable_result_is_named() -> None:
    state = run_state(_job("Complete"), [_pod("w-0", "Succeeded", "not json")])
    assert state.phase == "Failed" and state.reason == "NoResults" and "w-0" in state.message


def test_summary_field_names_are_camel_case() -> None:
    summary = summarize(_result([5], {"200": 1}, {}))
    assert set(summary) == {"requests", "successes", "errors", "achievedRps", "latencyMs",
                            "errorsByCode"}


def test_rate_series_stops_at_the_runs_duration() -> None:
    from dataclasses import replace

    from kuar_loadtest.report import rate_series

    result = replace(_result([5], {"200": 1}, {}),
                     timeline={"interval_s": 1, "responses": [100] * 10 + [3], "errors": []})
    series = rate_series(result)
    assert len(series) == 10 and series[-1] == (9.0, 100.0)


# --- issue 14, finding 13: the worker exits 1 when no request got an answer -----------------

def test_a_worker_that_exits_1_with_its_result_is_target_unreachable() -> None:
    # kuar-loadgen >= issue 14 exits 1 (EXIT_NO_ANSWERS) and still writes the result: the pod
    # is Failed, the Job is Failed (backoffLimit 0), and the result decides the reason
    dead = _result([], {}, {"connect": 50})
    state = run_state(_job("Failed"), [_pod("w-0", "Failed", dead.to_json(), code=1)])
    assert state.phase == "Failed" and state.reason == "TargetUnreachable", state
    assert "no request got an answer (50 sent; errors connect: 50)" in state.message
    assert state.results is not None and state.results["errorsByCode"] == {"connect": 50}


def test_unreachable_shards_beside_killed_ones_still_say_target_unreachable() -> None:
    # the Job controller stops the other shards once one pod fails: they report nothing
    dead = _result([], {}, {"timeout": 20})
    pods = [_pod("w-0", "Failed", dead.to_json(), code=1),
            _pod("w-1", "Failed", "", code=143)]
    state = run_state(_job("Failed"), pods)
    assert state.reason == "TargetUnreachable", state
    assert "w-1" in state.message  # the shard without a result is named


def test_one_shard_unreachable_while_others_got_answers_is_named() -> None:
    ok = _result([10, 20], {"200": 2}, {})
    dead = _result([], {}, {"connect": 2})
    state = run_state(_job("Failed"), [_pod("w-0", "Succeeded", ok.to_json()),
                                       _pod("w-1", "Failed", dead.to_json(), code=1)])
    assert state.phase == "Failed" and state.reason == "TargetUnreachable", state
    assert "worker pod w-1 got no answer" in state.message
    assert state.results is not None and state.results["requests"] == 4


def test_bad_input_exit_2_is_reported_with_the_workers_error_line() -> None:
    pods = [_pod("w-0", "Failed", "error: paths[0]: must not contain spaces", code=2)]
    state = run_state(_job("Failed"), pods)
    assert state.reason == "Error"
    assert "exited with code 2: error: paths[0]" in state.message


def test_a_missing_workers_result_makes_the_run_incomplete_not_succeeded() -> None:
    # issue 14, finding 10: a run used to report Succeeded with one shard's result missing
    a = _result([10, 20], {"200": 2}, {})
    job = _job("Complete")
    job.spec = JobSpec.model_validate({"completions": 2, "template": {}})
    state = run_state(job, [_pod("w-0", "Succeeded", a.to_json()),
                            _pod("w-1", "Succeeded", "not json")])
    assert state.phase == "Failed" and state.reason == "ResultsIncomplete"
    assert state.results_complete is False
    assert "1 of 2 workers" in state.message and "w-1" in state.message
    assert state.results is not None and state.results["requests"] == 2  # kept, not dropped


def test_a_run_with_every_result_says_so() -> None:
    a = _result([10], {"200": 1}, {})
    job = _job("Complete")
    job.spec = JobSpec.model_validate({"completions": 1, "template": {}})
    state = run_state(job, [_pod("w-0", "Succeeded", a.to_json())])
    assert state.phase == "Succeeded" and state.results_complete is True
