"""Decode/encode pairs that turn the raw objects of a review into typed models and back.

Place in the pipeline: between :mod:`kuar.webhook.review` (raw dicts) and the handlers
(validators, defaulters, converters), which work on typed objects. Known as the ``Decoder``
of controller-runtime's admission package.

:meth:`Codec.of` takes any class with a ``decode(dict)`` classmethod and an
``encode()`` method (every :class:`kuar.resources.Resource`), or a pydantic model;
:data:`RAW` keeps plain dicts. A decode failure becomes field causes through
:func:`causes_from_error`, so a denial names the field (``spec.scheme``), not a stack trace.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel, ValidationError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FieldCause:
    """One field-level reason for a denial (``status.details.causes[]`` on the wire)."""

    field: str
    """The field path, e.g. ``spec.paths[1]``."""
    message: str
    """What is wrong, e.g. ``Invalid value: "x": must start with '/'``."""
    reason: str = "FieldValueInvalid"
    """A machine reason: ``FieldValueInvalid``, ``FieldValueRequired``,
    ``FieldValueNotSupported``, ``FieldValueForbidden``, ``FieldValueTooLong``..."""

    def to_wire(self) -> dict[str, str]:
        """The ``metav1.StatusCause`` form."""
        return {"field": self.field, "reason": self.reason, "message": self.message}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class Codec(Generic[T]):
    """How to turn a raw object into ``T`` and back (``decode``/``encode``)."""

    decode: Callable[[Mapping[str, Any]], T]
    encode: Callable[[T], dict[str, Any]]

    @staticmethod
    def of(model: type[T]) -> Codec[T]:
        """A codec for a typed model: ``model.decode``/``obj.encode()``, else pydantic."""
        decode = getattr(model, "decode", None)
        encode = getattr(model, "encode", None)
        if callable(decode) and callable(encode):
            return Codec(decode=cast(Callable[[Mapping[str, Any]], T], decode),
                         encode=cast(Callable[[T], dict[str, Any]], encode))
        if isinstance(model, type) and issubclass(model, BaseModel):
            m = cast(type[BaseModel], model)
            return Codec(
                decode=cast(Callable[[Mapping[str, Any]], T], m.model_validate),
                encode=lambda obj: cast(BaseModel, obj).model_dump(
                    mode="json", by_alias=True, exclude_none=True),
            )
        raise TypeError(f"{model!r} has no decode/encode pair; pass Codec(decode=, encode=)")


def _raw_decode(data: Mapping[str, Any]) -> dict[str, Any]:
    # A deep copy, so a defaulter that edits the dict does not edit the original we diff against.
    return copy.deepcopy(dict(data))


def _raw_encode(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


RAW: Codec[dict[str, Any]] = Codec(decode=_raw_decode, encode=_raw_encode)
"""The identity codec: handlers get (a copy of) the plain dict."""


def field_path(loc: Sequence[str | int]) -> str:
    """``("spec", "paths", 1)`` -> ``spec.paths[1]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def quote_value(value: str) -> str:
    """A string value as Kubernetes shows it in a cause (Go's ``%q``).

    In double quotes, with quotes, backslashes and control characters escaped, so a value
    never breaks the message: a carriage return in a value is shown as the two characters
    backslash and ``r``.
    """
    return json.dumps(value, ensure_ascii=False)


def _quote(value: Any) -> str:
    if isinstance(value, str):
        return quote_value(value)
    return str(value) if not isinstance(value, dict | list) else type(value).__name__


def causes_from_error(exc: ValidationError) -> list[FieldCause]:
    """Field causes in Kubernetes wording from a pydantic ``ValidationError``."""
    causes: list[FieldCause] = []
    for err in exc.errors(include_url=False):
        path = field_path([p for p in err["loc"] if isinstance(p, str | int)])
        kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
        if kind == "missing":
            causes.append(FieldCause(path, "Required value", "FieldValueRequired"))
        elif kind in ("literal_error", "enum"):
            expected = str(ctx.get("expected", "")).replace("'", '"')
            causes.append(FieldCause(
                path, f"Unsupported value: {_quote(value)}: supported values: {expected}",
                "FieldValueNotSupported"))
        elif kind in ("string_too_long", "too_long"):
            causes.append(FieldCause(path, f"Too long: {err['msg']}", "FieldValueTooLong"))
        else:
            msg = err["msg"]
            causes.append(FieldCause(path, f"Invalid value: {_quote(value)}: {msg[:1].lower()}"
                                           f"{msg[1:]}", "FieldValueInvalid"))
    return causes
