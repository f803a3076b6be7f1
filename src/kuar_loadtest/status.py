"""How a run is going: the Job's and pods' state turned into LoadTest status (pure).

Place in the pipeline: called by :mod:`kuar_loadtest.controller` with the run's Job and pods;
returns the phase, a reason and message, and the merged results. No I/O.

Rules:
- Running until the Job is Complete or Failed (its conditions).
- Complete: every pod's result (its termination message, written by kuar-loadgen) is merged
  into one (histograms merged, not averaged). Succeeded, unless no request got an answer at
  all: then Failed with reason ``TargetUnreachable`` and the error kinds seen.
- Failed Job because a worker got no answer at all: kuar-loadgen exits 1
  (``EXIT_NO_ANSWERS``) and still writes its result, which fails its pod and so the Job
  (``backoffLimit: 0``). The results of those pods and of any succeeded ones are merged:
  Failed with reason ``TargetUnreachable``, the error kinds seen, the pods that got no answer
  when others did, and the pods that reported nothing (the Job controller stops the other
  shards once one pod fails).
- Any other failed Job: Failed with the first failed pod's reason and message
  (``UnsupportedImage``, a crash's or bad input's exit code and log tail, ...), or the Job's
  own condition (e.g. DeadlineExceeded).
- Complete, but fewer results than workers (a pod's termination message unreadable or lost):
  Failed with reason ``ResultsIncomplete``, the partial results kept, condition
  ``ResultsComplete=False`` (a finished run with every result has ``ResultsComplete=True``).
- Successes are responses with a status below 400; errors are every other response plus
  connection errors, timeouts and dropped requests (not sent: the load generator was at
  capacity), listed by code (``"503"``) and kind (``"timeout"``, ``"dropped"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kuar.models.batch.v1 import Job, JobCondition
from kuar.models.core.v1 import ContainerStateTerminated, Pod
from kuar_loadgen.result import EXIT_NO_ANSWERS, LoadResult, merge_results


@dataclass(frozen=True, slots=True)
class RunState:
    """What the controller writes: phase, why, and the results when there are some."""

    phase: str
    reason: str
    message: str
    results: dict[str, Any] | None = None
    merged: LoadResult | None = None
    results_complete: bool | None = None
    """Whether every worker's result is in ``merged`` (``None``: the run has no results)."""


def job_condition(job: Job, kind: str) -> JobCondition | None:
    """The Job's condition ``kind`` (``Complete``/``Failed``) when it is True."""
    for cond in (job.status.conditions if job.status else None) or []:
        if cond.type == kind and cond.status == "True":
            return cond
    return None


def _terminated(pod: Pod) -> ContainerStateTerminated | None:
    for status in (pod.status.container_statuses if pod.status else None) or []:
        if status.state is not None and status.state.terminated is not None:
            return status.state.terminated
    return None


def _phase(pod: Pod) -> str | None:
    return pod.status.phase if pod.status else None


def pod_results(pods: Sequence[Pod]) -> tuple[list[LoadResult], list[str]]:
    """Parse each succeeded pod's termination message; also return problems found."""
    results: list[LoadResult] = []
    problems: list[str] = []
    for pod in pods:
        if _phase(pod) != "Succeeded":
            continue
        terminated = _terminated(pod)
        message = (terminated.message if terminated else None) or ""
        try:
            results.append(LoadResult.from_json(message))
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"pod {pod.name or '?'}: unreadable result ({exc})")
    return results, problems


def summarize(result: LoadResult) -> dict[str, Any]:
    """The status ``results`` block (camelCase, as the API stores it)."""
    successes = sum(n for code, n in result.status_codes.items() if _is_success(code))
    by_code = {code: n for code, n in result.status_codes.items() if not _is_success(code)}
    by_code.update(result.error_kinds)
    return {
        "requests": result.requests,
        "successes": successes,
        "errors": result.requests - successes,
        "achievedRps": round(result.achieved_rps, 2),
        "latencyMs": {k: round(float(result.latency_ms.get(k, 0.0)), 3)
                      for k in ("p50", "p90", "p99", "max")},
        "errorsByCode": dict(sorted(by_code.items())),
        **({"startSkewMs": round(result.start_skew_ms, 3)}
           if result.start_skew_ms is not None else {}),
    }


def _is_success(code: str) -> bool:
    return code.isdigit() and int(code) < 400


def failed_pod_reason(pods: Sequence[Pod]) -> tuple[str, str] | None:
    """Reason and message of the first failed pod, as a kubelet reported them."""
    for pod in pods:
        if pod.status is None or pod.status.phase != "Failed":
            continue
        terminated = _terminated(pod)
        reason = pod.status.reason or (terminated.reason if terminated else None) or "PodFailed"
        detail = pod.status.message or (terminated.message if terminated else None) or ""
        code = terminated.exit_code if terminated else None
        where = f"worker pod {pod.name or '?'}" + (
            f" exited with code {code}" if code is not None else "")
        text = f"{where}: {detail.strip()}" if detail.strip() else where
        return reason, text[:1024]
    return None


def _kinds(result: LoadResult) -> str:
    return ", ".join(f"{k}: {n}" for k, n in sorted(result.error_kinds.items())) or "none"


def unreachable_state(pods: Sequence[Pod]) -> RunState | None:
    """``TargetUnreachable`` when a pod failed because it got no answer, else ``None``.

    Such a pod exited 1 with a readable result; it is merged with every other pod's result.
    """
    silent: list[LoadResult] = []
    silent_pods: list[str] = []
    unreported: list[str] = []
    for pod in pods:
        if _phase(pod) != "Failed":
            continue
        terminated = _terminated(pod)
        try:
            if terminated is None or terminated.exit_code != EXIT_NO_ANSWERS:
                raise ValueError("no result")
            silent.append(LoadResult.from_json(terminated.message or ""))
            silent_pods.append(pod.name or "?")
        except (ValueError, KeyError, TypeError):
            unreported.append(pod.name or "?")
    if not silent:
        return None
    answered, _ = pod_results(pods)
    merged = merge_results([*answered, *silent])
    if merged.responses == 0:
        message = f"no request got an answer ({merged.requests} sent; errors {_kinds(merged)})"
    else:
        lost = merge_results(silent)
        message = (f"worker pod {', '.join(silent_pods)} got no answer ({lost.requests} sent; "
                   f"errors {_kinds(lost)}); {merged.responses} of {merged.requests} "
                   "requests answered in all")
    if unreported:
        message += f"; worker pod {', '.join(unreported)} reported no result"
    return RunState("Failed", "TargetUnreachable", message[:1024], summarize(merged), merged)


def run_state(job: Job, pods: Sequence[Pod]) -> RunState:
    """The state of one run from its Job and pods (see the module's rules)."""
    if job_condition(job, "Failed") is not None:
        unreachable = unreachable_state(pods)
        if unreachable is not None:
            return unreachable
        failed = failed_pod_reason(pods)
        if failed is not None:
            return RunState("Failed", failed[0], failed[1])
        cond = job_condition(job, "Failed")
        return RunState("Failed", (cond.reason if cond else None) or "JobFailed",
                        (cond.message if cond else None) or "the worker Job failed")
    if job_condition(job, "Complete") is None:
        active = (job.status.active if job.status else None) or 0
        return RunState("Running", "WorkersRunning", f"{active} worker pod(s) running")
    results, problems = pod_results(pods)
    if not results:
        detail = "; ".join(problems) or "no worker pod reported a result"
        return RunState("Failed", "NoResults", detail)
    merged = merge_results(results)
    summary = summarize(merged)
    expected = (job.spec.completions if job.spec else None) or len(results)
    if len(results) < expected:
        # A partial measurement is not a result: the rate and latencies of missing shards are
        # unknown. Keep what was measured, but do not call the run a success.
        missing = "; ".join(problems) or "the other workers' pods are gone"
        return RunState(
            "Failed", "ResultsIncomplete",
            f"{len(results)} of {expected} workers reported results ({missing})",
            summary, merged, results_complete=False,
        )
    if merged.responses == 0:  # a worker older than exit code 1, or zero requests
        return RunState(
            "Failed", "TargetUnreachable",
            f"no request got an answer ({merged.requests} sent; errors {_kinds(merged)})",
            summary, merged,
        )
    message = (f"{summary['achievedRps']} req/s achieved, p99 {summary['latencyMs']['p99']} ms, "
               f"{summary['errors']} errors of {summary['requests']}")
    return RunState("Succeeded", "Completed", message, summary, merged, results_complete=True)
