"""CanaryConfig: rollout settings stored as a custom resource (the seed's "just data" pattern).

No controller acts on it: the API server validates, stores and serves it, and applications
read it through the typed client. Many applications can share one definition of "how we roll
out", which a ConfigMap could only hold as an unchecked string.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from kuar.resources import CustomResource, KubeModel, ListType, PrinterColumn, Rule


class Step(KubeModel):
    """One step of the rollout."""

    weight: int = Field(ge=1, le=100)
    """Percent of traffic sent to the new version during this step."""
    pause: str = Field(default="5m", pattern=r"^([0-9]+(s|m|h))+$")
    """How long to watch the metrics before the next step."""


class CanarySpec(
    KubeModel,
    rules=[Rule("self.steps[size(self.steps) - 1].weight == 100",
                message="the last step must send 100% of the traffic")],
):
    """How an application rolls out a new version."""

    service: str = Field(min_length=1, max_length=63)
    """The Service whose traffic is shifted."""
    steps: Annotated[list[Step], ListType.atomic()] = Field(min_length=1, max_length=10)
    """Traffic weights in order."""
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    """Abort when the new version's error rate goes above this fraction."""


class CanaryConfig(
    CustomResource,
    group="examples.kuar.dev",
    version="v1",
    kind="CanaryConfig",
    short_names=["canary"],
    printer_columns=[PrinterColumn(name="Service", json_path=".spec.service")],
):
    """Rollout settings of one application."""

    spec: CanarySpec
