"""Sample declarations that use every schema feature (shared by unit and integration tests)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Base64Bytes, Field

from kuar.resources import (
    CustomResource,
    EmbeddedResource,
    Format,
    IntOrString,
    KubeModel,
    ListType,
    MapType,
    PreserveUnknownFields,
    PrinterColumn,
    Rule,
    ScaleSubresource,
)

GROUP = "widgets.test.kuar.dev"


class Color(StrEnum):
    RED = "red"
    GREEN = "green"


class Port(KubeModel):
    """A named port."""

    name: str = Field(max_length=15)
    port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP"] = "TCP"


class Limits(KubeModel, rules=[Rule("self.min <= self.max", message="min must not exceed max")]):
    """A range."""

    min: int = 0
    max: int = 10


class Loose(KubeModel, preserve_unknown_fields=True):
    """An object that keeps fields it does not declare."""

    known: str | None = None


class WidgetSpec(KubeModel):
    """What a widget is."""

    size: int = Field(ge=1, le=100)
    """How big, from 1 to 100."""
    ratio: float = Field(default=0.5, gt=0, lt=1)
    name: str = Field(default="w", min_length=1, max_length=20, pattern=r"^[a-z]+$")
    color: Color = Color.RED
    mode: Literal["fast", "slow"] | None = None
    tags: Annotated[list[str], ListType.set()] = Field(default_factory=list, max_length=10)
    ports: Annotated[list[Port], ListType.map("name")] = Field(default_factory=list,
                                                              max_length=8)
    target: IntOrString = 8080
    labels: Annotated[dict[str, str], MapType("granular")] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    loose: Loose | None = None
    blob: Annotated[dict[str, Any], PreserveUnknownFields()] | None = None
    template: Annotated[dict[str, Any], EmbeddedResource()] | None = None
    host: Annotated[str, Format("hostname")] = "localhost"
    payload: Base64Bytes | None = None
    since: AwareDatetime | None = None
    replicas: int = 1
    immutable_key: Annotated[str, Rule("self == oldSelf", message="immutableKey is immutable")] = (
        "k"
    )


class WidgetStatus(KubeModel):
    """What a widget did."""

    replicas: int = 0
    selector: str | None = None
    message: str | None = None


class Widget(
    CustomResource,
    group=GROUP,
    version="v1",
    kind="Widget",
    plural="widgets",
    short_names=["wd"],
    categories=["kuar-test"],
    printer_columns=[
        PrinterColumn(name="Size", type="integer", json_path=".spec.size"),
        PrinterColumn(name="Replicas", type="integer", json_path=".status.replicas",
                      priority=1, description="observed replicas"),
    ],
    scale=ScaleSubresource(label_selector_path=".status.selector"),
):
    """A widget of every schema feature."""

    spec: WidgetSpec
    status: WidgetStatus | None = None


class Gadget(CustomResource, group=GROUP, version="v1alpha1", kind="Gadget", scope="Cluster"):
    """A cluster-scoped resource without status."""

    spec: dict[str, str] = Field(default_factory=dict)
