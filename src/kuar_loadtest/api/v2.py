"""LoadTest v2 (``loadtests.beta.kuar.com``): the target and the load as two sub-objects.

Place in the pipeline: the storage version and the conversion hub of the LoadTest API; the
controller, the webhooks, the CLI and the demo work on these types. v1 stays served: the API
server converts through the conversion webhook (``kuar_loadtest.api.conversion``, hub = v2),
so ``kubectl get loadtests.v1.beta.kuar.com`` reads any LoadTest as v1
(docs/decisions/0014-loadtest-storage-v2.md).

What changed from v1: ``service``/``scheme``/``port``/``paths`` moved under ``spec.target``,
``requestsPerSecond``/``workers``/``duration`` under ``spec.load``; new in v2 are
``spec.target.headers`` and ``spec.load.rampUp``. Read as v1, an object keeps what v1 cannot
express in an annotation, so a v2 -> v1 -> v2 round trip loses nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kuar.models.core.v1 import (
    Affinity,
    ConfigMapKeySelector,
    ResourceRequirements,
    SecretKeySelector,
    Toleration,
)
from kuar.resources import CustomResource, KubeModel, ListType, PrinterColumn, Rule
from kuar_loadtest.api.status import GROUP, STATUS_COLUMNS, LoadTestStatus

DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"


class BodySource(KubeModel):
    """Where a request body comes from instead of ``body``: a ConfigMap or Secret key.

    The object is in the LoadTest's namespace; a Secret's value is never printed anywhere.
    """

    config_map_key_ref: ConfigMapKeySelector | None = None
    """A ConfigMap key."""
    secret_key_ref: SecretKeySelector | None = None
    """A Secret key."""


class HttpRequest(KubeModel):
    """One kind of request of the mix."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    """The HTTP method."""
    path: str = Field(default="/", pattern=r"^/", max_length=2048)
    """Path and query."""
    headers: dict[str, str] | None = None
    """Headers of this kind (after ``target.headers``)."""
    body: str | None = Field(default=None, max_length=1_048_576)
    """The body, inline (at most 1 MiB)."""
    body_from: BodySource | None = None
    """The body from a ConfigMap or Secret key instead."""
    weight: int = Field(default=1, ge=0, le=10_000)
    """Share of the mix: kinds are sent in exact proportion to their weights."""


class Target(KubeModel):
    """Where the requests go."""

    service: str = Field(min_length=1, max_length=253)
    """The Service to send requests to, in the LoadTest's namespace."""
    scheme: Literal["http", "https"] = "http"
    """The URL scheme of the requests."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """One of the Service's ports; unset, the controller picks it from the Service."""
    paths: Annotated[list[Annotated[str, Field(pattern=r"^/", max_length=2048)]],
                     ListType.atomic()] = Field(default=["/"], min_length=1, max_length=100)
    """URL paths requested in turn."""
    headers: dict[str, str] | None = None
    """Extra request headers (new in v2)."""
    requests: Annotated[list[HttpRequest], ListType.atomic()] | None = Field(
        default=None, max_length=50)
    """A request mix (method, headers, body, weight) instead of GETs of ``paths``."""


class Stage(KubeModel):
    """One stage of a rate profile: reach ``target`` req/s linearly over ``duration``."""

    duration: str = Field(pattern=DURATION)
    """How long the stage lasts, as a Go duration (more than zero)."""
    target: int = Field(ge=0, le=1_000_000)
    """Requests per second at the end of the stage (0 ramps down, or pauses)."""


class Load(
    KubeModel,
    rules=[Rule("!has(self.workers) || !has(self.requestsPerSecond) "
                "|| self.requestsPerSecond >= self.workers",
                message="requestsPerSecond must be at least workers",
                field_path=".requestsPerSecond"),
           Rule("has(self.requestsPerSecond) || has(self.stages)",
                message="either requestsPerSecond or stages is required",
                field_path=".requestsPerSecond")],
):
    """How hard and for how long: a constant rate, or stages."""

    requests_per_second: int | None = Field(default=None, ge=1, le=1_000_000)
    """The total request rate, shared by all workers (with ``stages``: unused)."""
    workers: int | None = Field(default=None, ge=1, le=1000)
    """How many worker pods share the load (at most the operator's ``max_workers``); unset,
    the operator decides."""
    duration: str = Field(default="60s", pattern=DURATION)
    """How long the test runs, as a Go duration (with ``stages``: their sum, this is unused)."""
    ramp_up: str | None = Field(default=None, pattern=DURATION)
    """Time to reach the full rate, starting from one request per second (new in v2)."""
    stages: Annotated[list[Stage], ListType.atomic()] | None = Field(
        default=None, min_length=1, max_length=100)
    """A rate profile instead of a constant rate: linear ramps from ``startRate`` through
    each stage's target, open loop throughout, sharded exactly over the workers."""
    start_rate: int | None = Field(default=None, ge=0, le=1_000_000)
    """The rate the first stage starts from (default 0)."""


class RunnerTemplate(KubeModel):
    """How the worker pods are placed and sized (kuar.models.core.v1 types)."""

    resources: ResourceRequirements | None = None
    """Requests of each worker; limits stay the operator's caps (``--worker-cpu-limit``...)."""
    node_selector: dict[str, str] | None = None
    """Nodes the workers may run on."""
    tolerations: Annotated[list[Toleration], ListType.atomic()] | None = None
    """Taints the workers tolerate."""
    affinity: Affinity | None = None
    """Node and pod affinity of the workers."""
    separate: bool | None = None
    """Spread the workers one per node (a required pod anti-affinity on the host name)."""
    service_account_name: str | None = Field(default=None, max_length=253)
    """The workers' ServiceAccount (its token is still not mounted)."""
    labels: dict[str, str] | None = None
    """Extra labels of the worker pods (the operator's own labels win)."""
    annotations: dict[str, str] | None = None
    """Extra annotations of the worker pods."""
    priority_class_name: str | None = Field(default=None, max_length=253)
    """The workers' PriorityClass."""


# --- schedules, history and baselines (issue 16; kuar_loadtest.schedule, .history, .baseline) ---


class Schedule(KubeModel):
    """When to run again, as a CronJob does (the webhook checks the cron syntax and zone)."""

    cron: str = Field(min_length=1, max_length=256)
    """Five cron fields (``*/5 * * * *``) or ``@hourly``/``@daily``/``@weekly``/``@monthly``/
    ``@yearly``; with a schedule, a spec change no longer starts a run by itself."""
    time_zone: str | None = Field(default=None, max_length=64)
    """An IANA time zone (``Europe/Berlin``); unset, UTC."""
    concurrency_policy: Literal["Forbid", "Replace"] = "Forbid"
    """A run due while another runs: Forbid waits for it (a run-now is refused), Replace stops
    it and starts the new one."""
    suspend: bool = False
    """Start no scheduled run (a running one finishes; run-now still works)."""
    starting_deadline_seconds: int | None = Field(default=None, ge=0)
    """A run more than this late (operator down, a Forbid wait) is skipped, as CronJob's."""


class Baseline(KubeModel):
    """What a finished run is compared with, and how much worse it may be."""

    run: str | None = Field(default=None, max_length=253)
    """A LoadTestRun of this LoadTest; unset, the previous successful run."""
    max_p50_increase_percent: float | None = Field(default=None, ge=0)
    """Fail (``Regression``) when p50 grew by more than this many percent."""
    max_p99_increase_percent: float | None = Field(default=None, ge=0)
    """Fail (``Regression``) when p99 grew by more than this many percent."""
    max_rate_decrease_percent: float | None = Field(default=None, ge=0, le=100)
    """Fail (``Regression``) when the achieved rate fell by more than this many percent."""


class LoadTestSpec(KubeModel):
    """What to load and how."""

    target: Target
    """Where the requests go."""
    load: Load
    """How hard and for how long."""
    thresholds: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]],
                          ListType.atomic()] | None = Field(default=None, max_length=20)
    """Pass/fail conditions on the merged result, e.g. ``p99 < 50ms``, ``p95 < 20ms``,
    ``errorRate < 1%``, ``achievedRate > 98%`` (kuar_loadgen.thresholds). Their outcome is the
    ``ThresholdsMet`` condition; a crossed one ends the run Failed (``ThresholdsCrossed``)."""
    abort_on_fail: bool | None = None
    """Stop the workers once a threshold is crossed for good, instead of running to the end."""
    runner: RunnerTemplate | None = None
    """The worker pods' placement and size."""
    cleanup: Literal["post"] | None = None
    """``post``: delete the run's Job (and its pods) once the results are stored."""
    schedule: Schedule | None = None
    """Run on a cron schedule; unset, one run per spec generation."""
    history_limit: int | None = Field(default=None, ge=1, le=1000)
    """How many LoadTestRun records to keep (unset: the operator's default, 10)."""
    baseline: Baseline | None = None
    """Compare each finished run with a baseline and fail on a regression."""


class LoadTest(
    CustomResource,
    group=GROUP,
    version="v2",
    kind="LoadTest",
    plural="loadtests",
    singular="loadtest",
    short_names=["lt"],
    categories=["kuar"],
    scope="Namespaced",
    served=True,
    storage=True,
    printer_columns=[
        PrinterColumn(name="Service", type="string", json_path=".spec.target.service"),
        PrinterColumn(name="RPS", type="integer", json_path=".spec.load.requestsPerSecond"),
        *STATUS_COLUMNS,
    ],
):
    """A load test (v2 shape): ``spec.target`` and ``spec.load``."""

    spec: LoadTestSpec
    """The desired load test."""
    status: LoadTestStatus | None = None
    """The observed state, set by the controller (same as v1)."""
