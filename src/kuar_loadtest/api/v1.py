"""LoadTest v1 (``loadtests.beta.kuar.com``): the seed's CRD as typed Python.

Place in the pipeline: a served, non-storage version of the LoadTest API (v2 is the storage
version and the conversion hub; ``kuar_loadtest.api.conversion``). ``kuar generate crds
kuar_loadtest.api`` turns both into ``deploy/crds/beta.kuar.com_loadtests.yaml``. Clients that
speak v1 (the seed's ``my-loadtest``) keep working: the API server converts through the
conversion webhook, losslessly both ways.

The seed's four spec fields (``service``, ``scheme``, ``requestsPerSecond``, ``paths``) keep
their names and types; the optional fields added here (``port``, ``duration``, ``workers``)
have defaults, so the seed's ``my-loadtest`` stays valid unchanged. Storage moved to v2
(docs/decisions/0014-loadtest-storage-v2.md).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kuar.resources import CustomResource, KubeModel, ListType, PrinterColumn, Rule
from kuar_loadtest.api.status import (
    GROUP,
    STATUS_COLUMNS,
    Latency,
    LoadTestResults,
    LoadTestStatus,
    Phase,
)

__all__ = ["GROUP", "STATUS_COLUMNS", "Latency", "LoadTest", "LoadTestResults", "LoadTestSpec",
           "LoadTestStatus", "Phase"]



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
    storage=False,
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
