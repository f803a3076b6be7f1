"""AdmissionReview and ConversionReview (v1) on the wire: parse requests, build responses.

Place in the pipeline: the first and last step of every webhook call. The HTTPS server
(:mod:`kuar.webhook.server`) hands the raw body to :func:`parse_admission_review` or
:func:`parse_conversion_review`; the handlers (:mod:`kuar.webhook.admission`,
:mod:`kuar.webhook.conversion`) build the answer with the ``*_response`` helpers.

Guarantees:
- Only ``admission.k8s.io/v1`` ``AdmissionReview`` and ``apiextensions.k8s.io/v1``
  ``ConversionReview`` are accepted (the configurations kuar generates ask for v1 only).
- Every malformed body (not JSON, nested too deeply for Python's parser, not an object, wrong
  apiVersion or kind, no ``request``, missing or empty ``uid``, a field of the wrong type)
  raises :class:`ReviewError` with a 4xx code and a message naming what is wrong; nothing
  else escapes the parsers.
- A response's ``uid`` is the request's ``uid``, always.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ADMISSION_API_VERSION = "admission.k8s.io/v1"
CONVERSION_API_VERSION = "apiextensions.k8s.io/v1"
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


NESTED_TOO_DEEPLY = "body is nested too deeply"
"""The 400 message of a body whose nesting exceeds what the parser (Python's recursion limit,
about 1,000 levels) can take; no Kubernetes object comes near it."""


class ReviewError(Exception):
    """The request body is not a usable review; answered with ``code`` (4xx) and a JSON Status."""

    def __init__(self, message: str, *, code: int = 400) -> None:
        """Record the HTTP status ``code`` and a message for the caller."""
        super().__init__(message)
        self.code = code
        self.message = message


def status_body(code: int, message: str) -> dict[str, Any]:
    """A ``metav1.Status`` failure body: what the server sends with every 4xx/5xx answer."""
    reasons = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed",
               413: "RequestEntityTooLarge", 415: "UnsupportedMediaType",
               408: "Timeout", 500: "InternalError", 503: "ServiceUnavailable"}
    return {"apiVersion": "v1", "kind": "Status", "status": "Failure", "message": message,
            "reason": reasons.get(code, "BadRequest" if code < 500 else "InternalError"),
            "code": code}


@dataclass(frozen=True, slots=True)
class GroupVersionKind:
    """``{group, version, kind}`` of an admission request."""

    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        """``group/version`` (just ``version`` for the core group)."""
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True, slots=True)
class GroupVersionResource:
    """``{group, version, resource}`` of an admission request."""

    group: str
    version: str
    resource: str


@dataclass(frozen=True, slots=True)
class UserInfo:
    """Who sent the request to the API server."""

    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """The ``request`` of an ``admission.k8s.io/v1`` ``AdmissionReview``, objects still raw."""

    uid: str
    kind: GroupVersionKind
    resource: GroupVersionResource
    operation: Operation
    name: str = ""
    namespace: str = ""
    sub_resource: str = ""
    user_info: UserInfo = field(default_factory=UserInfo)
    object: dict[str, Any] | None = None
    old_object: dict[str, Any] | None = None
    dry_run: bool = False
    options: dict[str, Any] | None = None


def _decode(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReviewError(f"body is not valid JSON: {exc}") from exc
    except RecursionError:
        raise ReviewError(NESTED_TOO_DEEPLY) from None
    if not isinstance(data, dict):
        raise ReviewError(f"body must be a JSON object, got {type(data).__name__}")
    return data


def _check_envelope(data: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    if data.get("apiVersion") != api_version or data.get("kind") != kind:
        raise ReviewError(
            f"expected apiVersion {api_version!r} and kind {kind!r}, got "
            f"{data.get('apiVersion')!r} and {data.get('kind')!r}"
        )
    request = data.get("request")
    if not isinstance(request, dict):
        raise ReviewError(f"{kind}.request is missing or not an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError(f"{kind}.request.uid is missing or empty")
    return request


def _str(obj: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise ReviewError(f"{where}.{key} is required")
        return ""
    if not isinstance(value, str):
        raise ReviewError(f"{where}.{key} must be a string")
    return value


def _obj(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ReviewError(f"{where} must be an object or null")
    return value


def parse_admission_review(body: bytes) -> AdmissionRequest:
    """Parse an ``AdmissionReview`` body; raises :class:`ReviewError` (400) when malformed."""
    request = _check_envelope(_decode(body), ADMISSION_API_VERSION, "AdmissionReview")
    where = "request"
    kind = _obj(request.get("kind"), f"{where}.kind") or {}
    resource = _obj(request.get("resource"), f"{where}.resource") or {}
    operation = request.get("operation")
    if operation not in OPERATIONS:
        raise ReviewError(f"{where}.operation must be one of {', '.join(OPERATIONS)}")
    user = _obj(request.get("userInfo"), f"{where}.userInfo") or {}
    groups = user.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ReviewError(f"{where}.userInfo.groups must be a list of strings")
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool | None):
        raise ReviewError(f"{where}.dryRun must be a boolean")
    extra = user.get("extra") or {}
    return AdmissionRequest(
        uid=request["uid"],
        kind=GroupVersionKind(_str(kind, "group", f"{where}.kind"),
                              _str(kind, "version", f"{where}.kind"),
                              _str(kind, "kind", f"{where}.kind", required=True)),
        resource=GroupVersionResource(_str(resource, "group", f"{where}.resource"),
                                      _str(resource, "version", f"{where}.resource"),
                                      _str(resource, "resource", f"{where}.resource")),
        operation=operation,
        name=_str(request, "name", where),
        namespace=_str(request, "namespace", where),
        sub_resource=_str(request, "subResource", where),
        user_info=UserInfo(
            username=_str(user, "username", f"{where}.userInfo"),
            uid=_str(user, "uid", f"{where}.userInfo"),
            groups=tuple(groups),
            extra=extra if isinstance(extra, dict) else {},
        ),
        object=_obj(request.get("object"), f"{where}.object"),
        old_object=_obj(request.get("oldObject"), f"{where}.oldObject"),
        dry_run=bool(dry_run),
        options=_obj(request.get("options"), f"{where}.options"),
    )


@dataclass(frozen=True, slots=True)
class ConversionRequest:
    """The ``request`` of an ``apiextensions.k8s.io/v1`` ``ConversionReview``."""

    uid: str
    desired_api_version: str
    objects: list[dict[str, Any]]


def parse_conversion_review(body: bytes) -> ConversionRequest:
    """Parse a ``ConversionReview`` body; raises :class:`ReviewError` (400) when malformed."""
    request = _check_envelope(_decode(body), CONVERSION_API_VERSION, "ConversionReview")
    desired = _str(request, "desiredAPIVersion", "request", required=True)
    objects = request.get("objects")
    if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
        raise ReviewError("request.objects must be a list of objects")
    return ConversionRequest(uid=request["uid"], desired_api_version=desired, objects=objects)


def admission_response(
    uid: str,
    *,
    allowed: bool,
    code: int | None = None,
    message: str = "",
    reason: str = "",
    causes: Sequence[Mapping[str, str]] = (),
    warnings: Sequence[str] = (),
    patch: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A whole ``AdmissionReview`` answer for request ``uid``.

    A denial carries a ``metav1.Status`` (``code``, ``message``, ``reason`` and field
    ``causes``), which the API server passes on to the client; a non-empty ``patch`` is sent
    base64-encoded with ``patchType: JSONPatch``.
    """
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed or message:
        status: dict[str, Any] = {"status": "Success" if allowed else "Failure"}
        if code is not None:
            status["code"] = code
        if message:
            status["message"] = message
        if reason:
            status["reason"] = reason
        if causes:
            status["details"] = {"causes": [dict(c) for c in causes]}
        response["status"] = status
    if warnings:
        response["warnings"] = list(warnings)
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(
            json.dumps(patch, separators=(",", ":")).encode()
        ).decode()
    return {"apiVersion": ADMISSION_API_VERSION, "kind": "AdmissionReview", "response": response}


def conversion_response(
    uid: str, *, converted: Sequence[dict[str, Any]] = (), error: str | None = None
) -> dict[str, Any]:
    """A whole ``ConversionReview`` answer: the converted objects, or one failure message."""
    result: dict[str, Any] = {"status": "Success"} if error is None else {
        "status": "Failure", "message": error}
    response: dict[str, Any] = {"uid": uid, "result": result,
                                "convertedObjects": list(converted) if error is None else []}
    return {"apiVersion": CONVERSION_API_VERSION, "kind": "ConversionReview",
            "response": response}
