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

from kuar.resources import CustomResource, KubeModel, ListType, PrinterColumn, Rule
from kuar_loadtest.api.status import GROUP, STATUS_COLUMNS, LoadTestStatus

DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"


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


class Load(
    KubeModel,
    rules=[Rule("!has(self.workers) || self.requestsPerSecond >= self.workers",
                message="requestsPerSecond must be at least workers",
                field_path=".requestsPerSecond")],
):
    """How hard and for how long."""

    requests_per_second: int = Field(ge=1, le=1_000_000)
    """The total request rate, shared by all workers."""
    workers: int | None = Field(default=None, ge=1, le=100)
    """How many worker pods share the load; unset, the operator decides."""
    duration: str = Field(default="60s", pattern=DURATION)
    """How long the test runs, as a Go duration."""
    ramp_up: str | None = Field(default=None, pattern=DURATION)
    """Time to reach the full rate, starting from one request per second (new in v2)."""


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
    schedule: Schedule | None = None
    """Run on a cron schedule (issue 16); unset, one run per spec generation."""
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
