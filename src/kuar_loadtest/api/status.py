"""The LoadTest status and printer columns, which every served version (v1, v2) shares.

Place in the pipeline: the controller writes this status (through the v2 storage version);
the API server returns it unchanged in either version (conversion rewrites ``spec`` only), so
both versions declare the same status schema from this one module.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime

from kuar.resources import Conditions, KubeModel, PrinterColumn

GROUP = "beta.kuar.com"
"""The API group of LoadTest."""


class Latency(KubeModel):
    """Latency percentiles in milliseconds, measured from each request's due time."""

    p50: float
    """Median."""
    p90: float
    """90th percentile."""
    p99: float
    """99th percentile."""
    max: float
    """Slowest request."""


class LoadTestResults(KubeModel):
    """What the workers measured, merged over all worker pods."""

    requests: int
    """Requests due in the run."""
    successes: int
    """Responses with a status below 400."""
    errors: int
    """Everything else: 4xx/5xx responses, connection errors, timeouts, and requests dropped
    because no connection was free in time (the load generator at capacity)."""
    achieved_rps: float
    """Responses per second over the run."""
    latency_ms: Latency
    """Latency percentiles (from the merged HDR histogram, never averaged)."""
    errors_by_code: dict[str, int] | None = None
    """Errors by HTTP status (``"503"``) or kind (``"timeout"``, ``"connect"``, ``"dropped"``)."""
    start_skew_ms: float | None = None
    """How far apart the workers really started, in ms: the spread of the moments each
    worker wrote its first request, measured against the start time they all shared."""


class MetricComparison(KubeModel):
    """One figure of a run next to the same figure of its baseline."""

    metric: str
    """``p50``, ``p99`` (ms) or ``achievedRps`` (req/s)."""
    baseline: float
    """The baseline run's figure."""
    current: float
    """This run's figure."""
    change_percent: float
    """``(current - baseline) / baseline`` in percent (0 when the baseline is 0)."""
    limit_percent: float | None = None
    """The spec's limit for this figure (an increase for latency, a decrease for the rate)."""
    regressed: bool = False
    """Whether the change is beyond the limit."""


class Comparison(KubeModel):
    """A run compared with its baseline run."""

    run: str
    """The run compared (a LoadTestRun name)."""
    baseline_run: str
    """The baseline (a LoadTestRun name)."""
    metrics: list[MetricComparison]
    """Each figure side by side."""
    regressed: bool
    """Whether any figure is beyond its limit."""
    message: str
    """The comparison in one line (both figures of each regressed metric)."""


Phase = Literal["Pending", "Queued", "Running", "Succeeded", "Failed"]
"""Where a LoadTest is in its life."""


class LoadTestStatus(KubeModel):
    """What the controller observed; written through the status subresource."""

    observed_generation: int | None = None
    """The ``metadata.generation`` this status describes."""
    phase: Phase | None = None
    """Where the test is in its life."""
    message: str | None = None
    """A human-readable explanation of the phase."""
    job_name: str | None = None
    """The Job that runs the workers."""
    queue_position: int | None = None
    """While Queued: the place in the operator's queue of runs (1 runs next)."""
    start_time: AwareDatetime | None = None
    """When the workers started."""
    completion_time: AwareDatetime | None = None
    """When the test finished."""
    conditions: Conditions | None = None
    """Standard conditions (``Ready``, ``Complete``...), merged by type."""
    results: LoadTestResults | None = None
    """The merged measurements, once the run has finished."""
    # --- run history and schedules (issue 16; kuar_loadtest.history, .schedule, .baseline) ---
    active_run: str | None = None
    """The LoadTestRun now running, if any."""
    last_run: str | None = None
    """The LoadTestRun that finished last."""
    last_successful_run: str | None = None
    """The LoadTestRun that last finished Succeeded (the default baseline)."""
    last_schedule_time: AwareDatetime | None = None
    """The schedule time of the last run the schedule started (as CronJob's)."""
    next_schedule_time: AwareDatetime | None = None
    """When the schedule starts the next run (unset: no schedule, or suspended)."""
    run_now_token: str | None = None
    """The last ``loadtest.beta.kuar.com/run-now`` annotation value acted upon."""
    comparison: Comparison | None = None
    """The last finished run compared with its baseline."""


STATUS_COLUMNS = (
    PrinterColumn(name="Phase", type="string", json_path=".status.phase"),
    PrinterColumn(name="Achieved", type="number", json_path=".status.results.achievedRps"),
    PrinterColumn(name="P99-ms", type="number", json_path=".status.results.latencyMs.p99"),
    PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp"),
)
"""Printer columns of the status, which every version shares."""
