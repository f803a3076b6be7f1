"""LoadTest v1 (``loadtests.beta.kuar.com``): the seed's CRD as typed Python.

Place in the pipeline: the storage version of the LoadTest API. ``kuar generate crds
kuar_loadtest.api`` turns it into ``deploy/crds/beta.kuar.com_loadtests.yaml``; the controller
reads ``spec`` and writes ``status`` through the status subresource.

The seed's four spec fields (``service``, ``scheme``, ``requestsPerSecond``, ``paths``) keep
their names and types; the optional fields added here (``port``, ``duration``, ``workers``)
have defaults, so the seed's ``my-loadtest`` stays valid unchanged. A v2 can be added later as
``v2.py`` with the same group, kind and plural and ``storage`` moved to it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from kuar.resources import (
    Conditions,
    CustomResource,
    KubeModel,
    ListType,
    PrinterColumn,
    Rule,
)

GROUP = "beta.kuar.com"


class LoadTestSpec(
    KubeModel,
    rules=[
        Rule(
            "!has(self.workers) || self.requestsPerSecond >= self.workers",
            message="requestsPerSecond must be at least workers (one request per second each)",
            field_path=".requestsPerSecond",
        )
    ],
):
    """What to load, how hard and for how long."""

    service: str = Field(min_length=1, max_length=253)
    """The Service to send requests to, in the LoadTest's namespace (or a host name)."""
    scheme: Literal["http", "https"] = "http"
    """The URL scheme of the requests."""
    requests_per_second: int = Field(ge=1, le=1_000_000)
    """The total request rate, shared by all workers."""
    paths: Annotated[list[Annotated[str, Field(pattern=r"^/", max_length=2048)]],
                     ListType.atomic()] = Field(default=["/"], min_length=1, max_length=100)
    """URL paths requested in turn."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """One of the Service's ports; unset, the Service's only port, or the one named after
    the scheme."""
    duration: str = Field(default="60s", pattern=r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")
    """How long the test runs, as a Go duration (``30s``, ``5m``, ``1h30m``)."""
    workers: int | None = Field(default=None, ge=1, le=100)
    """How many worker pods share the load; unset, the operator decides from
    ``requestsPerSecond`` and its per-pod rate."""


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


Phase = Literal["Pending", "Running", "Succeeded", "Failed"]
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


class LoadTest(
    CustomResource,
    group=GROUP,
    version="v1",
    kind="LoadTest",
    plural="loadtests",
    singular="loadtest",
    short_names=["lt"],
    categories=["kuar"],
    scope="Namespaced",
    served=True,
    storage=True,
    printer_columns=[
        PrinterColumn(name="Service", type="string", json_path=".spec.service"),
        PrinterColumn(name="RPS", type="integer", json_path=".spec.requestsPerSecond"),
        *STATUS_COLUMNS,
    ],
):
    """A load test: send ``requestsPerSecond`` requests to a Service's ``paths``."""

    spec: LoadTestSpec
    """The desired load test."""
    status: LoadTestStatus | None = None
    """The observed state, set by the controller."""
