"""LoadTestRun (``loadtestruns.beta.kuar.com``): one run of a LoadTest, kept as its own record.

Place in the pipeline: the LoadTest controller creates one LoadTestRun per run it starts
(owned by the LoadTest, so deleting the LoadTest deletes its history), writes the run's
results and its comparison with a baseline into the record's status when the run ends, and
deletes the oldest records beyond the LoadTest's history limit (:mod:`kuar_loadtest.history`).
``kuar loadtest report NAME`` reads them for its trend plot; ``kubectl get loadtestruns``
lists them.

Guarantees: the record's ``spec`` is a snapshot of the LoadTest's spec when the run started;
it is kept as stored (unknown fields preserved), so a record written by an older operator
stays readable after the LoadTest type grows. Caveat: the full merged histogram stays in the
LoadTest's results ConfigMap (latest run only); a record keeps the summary figures.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime

from kuar.resources import (
    Conditions,
    CustomResource,
    KubeModel,
    PreserveUnknownFields,
    PrinterColumn,
)
from kuar_loadtest.api.status import GROUP, Comparison, LoadTestResults

Trigger = Literal["Spec", "Schedule", "RunNow"]
"""What started a run: a new spec generation, the schedule, or the run-now annotation."""


class LoadTestRunSpec(KubeModel):
    """What the run was asked to do (written once, when it starts)."""

    load_test: str
    """The LoadTest this run belongs to (same namespace)."""
    trigger: Trigger
    """What started the run."""
    scheduled_time: AwareDatetime | None = None
    """The schedule time this run stands for (``trigger: Schedule``)."""
    generation: int
    """The LoadTest's ``metadata.generation`` the run used."""
    load_test_spec: Annotated[dict[str, Any], PreserveUnknownFields()]
    """A snapshot of the LoadTest's ``spec`` (v2 shape) at the start of the run."""


RunPhase = Literal["Running", "Succeeded", "Failed"]
"""Where a run is in its life."""


class LoadTestRunStatus(KubeModel):
    """What the run measured, and how it compares with its baseline."""

    phase: RunPhase | None = None
    """Where the run is."""
    reason: str | None = None
    """Why it ended so (``Completed``, ``Regression``, ``Replaced``, ...)."""
    message: str | None = None
    """A human-readable explanation."""
    start_time: AwareDatetime | None = None
    """When the run started."""
    start_at: AwareDatetime | None = None
    """When the workers start sending, all together (RFC 3339, milliseconds): written once
    by the controller when every worker pod of the run is Running; each worker watches this
    record for it (the start barrier)."""
    completion_time: AwareDatetime | None = None
    """When the run ended."""
    results: LoadTestResults | None = None
    """The merged measurements."""
    comparison: Comparison | None = None
    """The comparison with the baseline run, when there was one."""
    conditions: Conditions | None = None
    """Standard conditions."""


class LoadTestRun(
    CustomResource,
    group=GROUP,
    version="v1",
    kind="LoadTestRun",
    plural="loadtestruns",
    singular="loadtestrun",
    short_names=["ltr"],
    categories=["kuar"],
    scope="Namespaced",
    served=True,
    storage=True,
    printer_columns=[
        PrinterColumn(name="LoadTest", type="string", json_path=".spec.loadTest"),
        PrinterColumn(name="Trigger", type="string", json_path=".spec.trigger"),
        PrinterColumn(name="Phase", type="string", json_path=".status.phase"),
        PrinterColumn(name="Reason", type="string", json_path=".status.reason"),
        PrinterColumn(name="Achieved", type="number", json_path=".status.results.achievedRps"),
        PrinterColumn(name="P50-ms", type="number", json_path=".status.results.latencyMs.p50"),
        PrinterColumn(name="P99-ms", type="number", json_path=".status.results.latencyMs.p99"),
        PrinterColumn(name="Started", type="date", json_path=".status.startTime"),
    ],
):
    """One run of a LoadTest: a snapshot of its spec, its results, its baseline comparison."""

    spec: LoadTestRunSpec
    """What the run was asked to do."""
    status: LoadTestRunStatus | None = None
    """What it measured."""
