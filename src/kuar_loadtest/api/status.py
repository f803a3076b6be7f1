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
    """Everything else: 4xx/5xx responses, connection errors and timeouts."""
    achieved_rps: float
    """Responses per second over the run."""
    latency_ms: Latency
    """Latency percentiles (from the merged HDR histogram, never averaged)."""
    errors_by_code: dict[str, int] | None = None
    """Errors by HTTP status (``"503"``) or kind (``"timeout"``, ``"connect"``)."""
    start_skew_ms: float | None = None
    """How far apart the workers really started, in ms: the spread of the moments each
    worker wrote its first request, measured against the start time they all shared."""


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


STATUS_COLUMNS = (
    PrinterColumn(name="Phase", type="string", json_path=".status.phase"),
    PrinterColumn(name="Achieved", type="number", json_path=".status.results.achievedRps"),
    PrinterColumn(name="P99-ms", type="number", json_path=".status.results.latencyMs.p99"),
    PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp"),
)
"""Printer columns of the status, which every version shares."""
