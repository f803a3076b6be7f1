"""Schema markers: Kubernetes-only validation put on typed fields with ``typing.Annotated``.

Place in the pipeline: read by :mod:`kuar.resources.schema` when a CRD is generated; pydantic
ignores them at run time (the API server enforces them). Known as kubebuilder markers
(``// +kubebuilder:validation:...``) in Go and ``#[schemars(...)]`` attributes in kube-rs.

Plain pydantic constraints (``Field(ge=1, max_length=63, pattern=...)``, ``Literal``, ``Enum``,
defaults, descriptions from attribute docstrings) need no marker; these cover what JSON Schema
cannot say::

    class Spec(KubeModel, rules=[Rule("self.min <= self.max", message="min must be <= max")]):
        min: int
        max: int
        hosts: Annotated[list[str], ListType.set()] = []
        ports: Annotated[list[Port], ListType.map("name")] = []
        port: IntOrString = 80
        template: Annotated[dict[str, Any], EmbeddedResource()] = {}
        extra: Annotated[dict[str, Any], PreserveUnknownFields()] = {}
        host: Annotated[str, Format("hostname")] = "localhost"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BeforeValidator,
    GetJsonSchemaHandler,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

VALIDATIONS = "x-kubernetes-validations"


@dataclass(frozen=True, kw_only=True)
class _Marker:
    """Base of markers: adds ``_extra()`` keys next to the field's schema."""

    def _extra(self) -> dict[str, Any]:
        raise NotImplementedError

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = dict(handler(core_schema))
        for key, value in self._extra().items():
            if key == VALIDATIONS:
                schema[key] = [*schema.get(key, []), *value]
            else:
                schema[key] = value
        return schema


@dataclass(frozen=True)
class Rule(_Marker):
    """A CEL validation rule (``x-kubernetes-validations``) checked by the API server.

    ``rule`` sees the field's value as ``self`` (and ``oldSelf`` on updates, which makes it a
    transition rule). ``message`` is what the user reads when the rule fails. Use it on a field
    with ``Annotated[T, Rule(...)]`` or on a whole model with ``class M(KubeModel, rules=[...])``.
    """

    rule: str
    message: str | None = None
    message_expression: str | None = field(default=None, kw_only=True)
    """A CEL expression computing the message (wins over ``message`` on the server)."""
    reason: (
        Literal["FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired",
                "FieldValueDuplicate"] | None
    ) = field(default=None, kw_only=True)
    field_path: str | None = field(default=None, kw_only=True)
    """Where the error points, relative to ``self`` (e.g. ``.spec.replicas``)."""
    optional_old_self: bool | None = field(default=None, kw_only=True)

    def to_schema(self) -> dict[str, Any]:
        """The ``x-kubernetes-validations`` entry."""
        out: dict[str, Any] = {"rule": self.rule}
        if self.message is not None:
            out["message"] = self.message
        if self.message_expression is not None:
            out["messageExpression"] = self.message_expression
        if self.reason is not None:
            out["reason"] = self.reason
        if self.field_path is not None:
            out["fieldPath"] = self.field_path
        if self.optional_old_self is not None:
            out["optionalOldSelf"] = self.optional_old_self
        return out

    def _extra(self) -> dict[str, Any]:
        return {VALIDATIONS: [self.to_schema()]}


@dataclass(frozen=True)
class ListType(_Marker):
    """How server-side apply merges a list: ``atomic``, ``set`` (scalars) or ``map`` by keys.

    A ``set`` is also checked for duplicates by the API server; a ``map`` is checked for
    duplicate keys. Use :meth:`set`, :meth:`map` or :meth:`atomic`.
    """

    type: Literal["atomic", "set", "map"]
    keys: tuple[str, ...] = ()

    @classmethod
    def set(cls) -> ListType:
        """A list of unique scalars merged as a set."""
        return cls("set")

    @classmethod
    def map(cls, *keys: str) -> ListType:
        """A list of objects merged by ``keys`` (JSON names, each required or defaulted)."""
        return cls("map", tuple(keys))

    @classmethod
    def atomic(cls) -> ListType:
        """A list replaced as a whole by server-side apply."""
        return cls("atomic")

    def _extra(self) -> dict[str, Any]:
        out: dict[str, Any] = {"x-kubernetes-list-type": self.type}
        if self.type == "map":
            out["x-kubernetes-list-map-keys"] = list(self.keys)
        return out


@dataclass(frozen=True)
class MapType(_Marker):
    """How server-side apply merges an object or map: ``granular`` (per key) or ``atomic``."""

    type: Literal["granular", "atomic"]

    def _extra(self) -> dict[str, Any]:
        return {"x-kubernetes-map-type": self.type}


@dataclass(frozen=True)
class PreserveUnknownFields(_Marker):
    """Keep fields the schema does not list (``x-kubernetes-preserve-unknown-fields``)."""

    def _extra(self) -> dict[str, Any]:
        return {"x-kubernetes-preserve-unknown-fields": True}


@dataclass(frozen=True)
class EmbeddedResource(_Marker):
    """The value is a whole Kubernetes object (apiVersion, kind, metadata are validated)."""

    def _extra(self) -> dict[str, Any]:
        return {"x-kubernetes-embedded-resource": True}


@dataclass(frozen=True)
class Format(_Marker):
    """An OpenAPI ``format`` the API server checks on a string (e.g. ``hostname``, ``cidr``)."""

    format: str

    def _extra(self) -> dict[str, Any]:
        return {"format": self.format}


@dataclass(frozen=True)
class _IntOrString(_Marker):
    def _extra(self) -> dict[str, Any]:
        return {"x-kubernetes-int-or-string": True}


IntOrString = Annotated[int | str, _IntOrString()]
"""An integer or a string, like ``targetPort: 8080`` or ``targetPort: http``."""


def _quantity_in(value: Any) -> Any:
    # The API server accepts 1 and 0.5 as quantities and always answers with text.
    if isinstance(value, bool):
        raise ValueError("a quantity is a number or a string such as '500m' or '1Gi'")
    if isinstance(value, int | float):
        return str(value)
    return value


_QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

Quantity = Annotated[
    str,
    BeforeValidator(_quantity_in),
    WithJsonSchema({
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": _QUANTITY_PATTERN,
        "x-kubernetes-int-or-string": True,
    }),
]
"""A resource quantity (``"500m"``, ``"1Gi"``, ``2``), kept as the text the server sends.

Numbers given in Python become text (``2`` -> ``"2"``); in a CRD it is an int-or-string
with the API server's quantity pattern, as controller-gen writes it.
"""


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


Time = Annotated[
    AwareDatetime,
    PlainSerializer(lambda v: _utc(v).strftime("%Y-%m-%dT%H:%M:%SZ"), return_type=str,
                    when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A ``metav1.Time``: an aware datetime, written as RFC 3339 in UTC with seconds (as Go does)."""

MicroTime = Annotated[
    AwareDatetime,
    PlainSerializer(lambda v: _utc(v).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), return_type=str,
                    when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A ``metav1.MicroTime``: an aware datetime, written with six fractional digits (as Go does)."""

Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
"""An OpenAPI ``number``: an int stays an int, so ``1`` is written back as ``1``, not ``1.0``."""
