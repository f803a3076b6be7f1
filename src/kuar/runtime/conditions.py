"""Status conditions with ``metav1.Condition`` semantics.

Place in the pipeline: pure helpers used by reconcilers to build ``status.conditions`` before
writing status (:mod:`kuar.runtime.status`). Known as ``meta.SetStatusCondition`` in
apimachinery (``k8s.io/apimachinery/pkg/api/meta/conditions.go``).

Guarantees: :func:`set_condition` returns a new list (the input is not changed) in which the
condition of that ``type`` is added or updated; its ``lastTransitionTime`` moves only when its
``status`` changes, while ``reason``, ``message`` and ``observedGeneration`` always take the
new values. Errors: ``ValueError`` for a status other than True/False/Unknown, or a type or
reason the API server would reject (the same patterns as metav1.Condition).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from kuar.resources import Condition

Status = Literal["True", "False", "Unknown"]

_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
_TYPE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)


def now_rfc3339() -> str:
    """The current UTC time as metav1.Time serialises it (seconds, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: Iterable[Mapping[str, Any] | Condition] | None,
    type: str,
    status: Status,
    reason: str,
    message: str = "",
    *,
    observed_generation: int | None = None,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """Return ``conditions`` with the condition ``type`` set (see the module's guarantees).

    ``conditions`` are dicts (JSON names) or typed :class:`~kuar.resources.Condition` objects;
    the result is JSON-ready dicts either way (a status patch takes them as they are).
    """
    if status not in ("True", "False", "Unknown"):
        raise ValueError(f"condition status must be True, False or Unknown, not {status!r}")
    if len(type) > 316 or not _TYPE.match(type):
        raise ValueError(f"invalid condition type {type!r}")
    if len(reason) > 1024 or not _REASON.match(reason):
        raise ValueError(f"invalid condition reason {reason!r} (CamelCase, e.g. 'Ready')")
    if len(message) > 32768:
        raise ValueError("condition message is longer than 32768 characters")
    result: list[dict[str, Any]] = []
    found = False
    for existing in conditions or ():
        item = (existing.model_dump(mode="json", by_alias=True, exclude_none=True)
                if isinstance(existing, Condition) else dict(existing))
        if item.get("type") == type:
            found = True
            if item.get("status") != status or not item.get("lastTransitionTime"):
                item["lastTransitionTime"] = now or now_rfc3339()
            item["status"] = status
            item["reason"] = reason
            item["message"] = message
            if observed_generation is not None:
                item["observedGeneration"] = observed_generation
            else:
                item.pop("observedGeneration", None)
        result.append(item)
    if not found:
        item = {
            "type": type,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": now or now_rfc3339(),
        }
        if observed_generation is not None:
            item["observedGeneration"] = observed_generation
        result.append(item)
    return result


def find_condition(
    conditions: Iterable[Mapping[str, Any]] | None, type: str
) -> Mapping[str, Any] | None:
    """The condition of ``type``, or ``None``."""
    for item in conditions or ():
        if item.get("type") == type:
            return item
    return None


def is_true(conditions: Iterable[Mapping[str, Any]] | None, type: str) -> bool:
    """Whether the condition of ``type`` exists with status ``True``."""
    found = find_condition(conditions, type)
    return found is not None and found.get("status") == "True"


def remove_condition(
    conditions: Iterable[Mapping[str, Any]] | None, type: str
) -> list[dict[str, Any]]:
    """Return ``conditions`` without the condition of ``type``."""
    return [dict(c) for c in conditions or () if c.get("type") != type]
