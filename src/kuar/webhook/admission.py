"""Validating and mutating admission webhooks bound to a typed resource.

Place in the pipeline: the :class:`~kuar.webhook.server.WebhookServer` routes each parsed
:class:`~kuar.webhook.review.AdmissionRequest` to the webhook registered at its path; the
webhook decodes the objects with its :class:`~kuar.webhook.codec.Codec`, calls the user's
:class:`Validator` or :class:`Defaulter`, and builds the ``AdmissionReview`` answer. The same
objects feed :mod:`kuar.webhook.configuration`, which writes the
``Validating/MutatingWebhookConfiguration`` that makes the API server call them. Known as
``admission.CustomValidator`` / ``CustomDefaulter`` in controller-runtime and
``kopf.on.validate`` / ``kopf.on.mutate`` in kopf.

Guarantees:
- The answer's ``uid`` is the request's. A validator allows by returning (optionally a list
  of warnings) and denies by raising :class:`Denied` (or :class:`FieldErrors`); a denial
  carries its message, HTTP code and field causes, which the API server passes to the client.
- A defaulter changes the typed object (in place, or returns a new one); the JSON patch sent
  back is computed by ``jsonpatch.make_patch`` between the object as received (``null``
  members left out, as Kubernetes treats them as absent) and ``codec.encode`` of the result,
  so only real differences are sent.
- An object that does not decode into the model is denied (422) with one cause per bad
  field, in Kubernetes wording.
- Dry run: side effects registered with :meth:`Admission.on_commit` run only when the request
  is not a dry run and was allowed; a webhook declared ``side_effects="None"`` that registers
  one is a programming error, answered by the failure policy.
- A handler that takes longer than ``handler_timeout`` (default: ``timeout_seconds`` minus
  one second, so the answer arrives before the API server gives up) is cancelled and the
  webhook answers with its ``failure_policy``: ``Fail`` denies (500, reason ``Timeout``),
  ``Ignore`` allows with a warning. An unexpected exception is treated the same way (500,
  ``InternalError``). Handlers never hang a request.
Caveats: the validator runs only on objects that decode; when decoding fails, the denial lists
the model's causes (all of them) and the validator's own rules are not consulted. A
synchronous handler runs on the event loop; one that blocks cannot be interrupted
by the timeout, so handlers doing I/O should be ``async``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

import jsonpatch
from pydantic import ValidationError

from kuar.webhook.codec import RAW, Codec, FieldCause, causes_from_error, quote_value
from kuar.webhook.review import AdmissionRequest, Operation, admission_response

log = logging.getLogger("kuar.webhook")

T = TypeVar("T")
FailurePolicy = Literal["Fail", "Ignore"]
SideEffects = Literal["None", "NoneOnDryRun"]
Warnings = Sequence[str] | None
Effect = Callable[[], Awaitable[None] | None]


class Denied(Exception):
    """Raised by a handler to deny the request.

    ``causes`` name the fields; without an explicit ``message`` it is built from them. The
    code defaults to 422 (``Invalid``) with causes and 403 (``Forbidden``) without.
    """

    def __init__(
        self,
        message: str = "",
        *,
        causes: Sequence[FieldCause] = (),
        code: int | None = None,
        reason: str | None = None,
        warnings: Sequence[str] = (),
    ) -> None:
        """Describe the denial."""
        self.causes = tuple(causes)
        self.message = message or "; ".join(str(c) for c in self.causes) or "denied"
        self.code = code if code is not None else (422 if self.causes else 403)
        self.reason = reason or ("Invalid" if self.code == 422 else "Forbidden")
        self.warnings = tuple(warnings)
        super().__init__(self.message)


class FieldErrors:
    """Collects field causes, then denies once with all of them (``field.ErrorList`` in Go)."""

    def __init__(self) -> None:
        """Start with no errors."""
        self.causes: list[FieldCause] = []

    def __bool__(self) -> bool:
        return bool(self.causes)

    def invalid(self, path: str, value: Any, detail: str) -> None:
        """``path: Invalid value: <value>: <detail>``."""
        shown = quote_value(value) if isinstance(value, str) else repr(value)
        self.causes.append(FieldCause(path, f"Invalid value: {shown}: {detail}"))

    def not_supported(self, path: str, value: Any, supported: Sequence[str]) -> None:
        """``path: Unsupported value: <value>: supported values: "a", "b"``."""
        shown = quote_value(value) if isinstance(value, str) else repr(value)
        allowed = ", ".join(f'"{s}"' for s in supported)
        self.causes.append(FieldCause(
            path, f"Unsupported value: {shown}: supported values: {allowed}",
            "FieldValueNotSupported"))

    def required(self, path: str, detail: str = "") -> None:
        """``path: Required value``."""
        self.causes.append(FieldCause(
            path, "Required value" + (f": {detail}" if detail else ""), "FieldValueRequired"))

    def forbidden(self, path: str, detail: str) -> None:
        """``path: Forbidden: <detail>``."""
        self.causes.append(FieldCause(path, f"Forbidden: {detail}", "FieldValueForbidden"))

    def raise_if_any(self, *, warnings: Sequence[str] = ()) -> None:
        """Raise :class:`Denied` (422) when at least one error was collected."""
        if self.causes:
            raise Denied(causes=self.causes, warnings=warnings)


@dataclass(slots=True)
class Admission(Generic[T]):
    """What a handler gets besides the objects: the request and a place for side effects."""

    request: AdmissionRequest
    object: T | None = None
    old_object: T | None = None
    _effects: list[Effect] = field(default_factory=list)

    @property
    def operation(self) -> Operation:
        """``CREATE``, ``UPDATE``, ``DELETE`` or ``CONNECT``."""
        return self.request.operation

    @property
    def dry_run(self) -> bool:
        """True when the API server will not persist the result."""
        return self.request.dry_run

    def on_commit(self, effect: Effect) -> None:
        """Run ``effect`` after an allowed, non-dry-run review (skipped on dry run)."""
        self._effects.append(effect)


class Validator(Generic[T]):
    """Checks objects of one kind; override the operations you care about.

    Each method may be ``async`` or plain; return warnings (or ``None``) to allow, raise
    :class:`Denied` to deny. The defaults allow.
    """

    def validate_create(self, obj: T, admission: Admission[T]) -> Warnings | Awaitable[Warnings]:
        """Check a new object."""
        return None

    def validate_update(
        self, old: T, new: T, admission: Admission[T]
    ) -> Warnings | Awaitable[Warnings]:
        """Check a change from ``old`` to ``new``."""
        return None

    def validate_delete(self, old: T, admission: Admission[T]) -> Warnings | Awaitable[Warnings]:
        """Check a deletion of ``old``."""
        return None


class Defaulter(Protocol[T]):
    """Sets defaults on an object: change ``obj`` in place, or return a replacement."""

    def default(self, obj: T, admission: Admission[T]) -> T | Awaitable[T | None] | None:
        """Fill in what the user left out."""


@dataclass(frozen=True, kw_only=True)
class AdmissionRule:
    """Which requests a webhook gets (``RuleWithOperations``)."""

    api_groups: tuple[str, ...]
    api_versions: tuple[str, ...]
    resources: tuple[str, ...]
    operations: tuple[Operation | Literal["*"], ...] = ("CREATE", "UPDATE")
    scope: Literal["*", "Cluster", "Namespaced"] = "*"

    def to_wire(self) -> dict[str, Any]:
        """The ``admissionregistration.k8s.io/v1`` form."""
        return {"apiGroups": list(self.api_groups), "apiVersions": list(self.api_versions),
                "resources": list(self.resources), "operations": list(self.operations),
                "scope": self.scope}


@dataclass(frozen=True, kw_only=True)
class MatchCondition:
    """A CEL expression that must be true for the API server to call the webhook."""

    name: str
    expression: str


def _without_nulls(value: Any) -> Any:
    # Kubernetes treats null and absent alike (e.g. the ``creationTimestamp: null`` of an
    # object being created) and typed encoders drop nulls, so diffing with them would send
    # pointless ``remove`` operations.
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def json_patch(src: dict[str, Any], dst: dict[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 operations turning ``src`` into ``dst`` (``jsonpatch.make_patch``).

    ``null`` members count as absent (Kubernetes treats them alike, e.g. the
    ``creationTimestamp: null`` of an object being created, and typed encoders drop them).
    Top-level members that are equal are skipped before diffing: ``make_patch`` costs about
    0.1 ms per compared subtree and ``metadata.managedFields`` is large and never defaulted;
    the differing members are diffed one by one and their paths prefixed.
    """
    ops: list[dict[str, Any]] = []
    for key in src.keys() - dst.keys():
        if src[key] is not None:
            ops.append({"op": "remove", "path": "/" + _escape(key)})
    for key, value in dst.items():
        path = "/" + _escape(key)
        old = src.get(key)
        if old == value:  # C-speed fast path: most members are untouched
            continue
        old, value = _without_nulls(old), _without_nulls(value)
        if old == value:
            continue
        if old is None:
            ops.append({"op": "add", "path": path, "value": value})
        elif value is None:
            ops.append({"op": "remove", "path": path})
        else:
            for op in jsonpatch.make_patch(old, value).patch:
                op = dict(op)
                op["path"] = path + op["path"]
                if "from" in op:
                    op["from"] = path + op["from"]
                ops.append(op)
    return ops


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _resource_rule(model: Any, operations: Sequence[str]) -> tuple[AdmissionRule, str]:
    info = model.resource_info()
    rule = AdmissionRule(api_groups=(info.group,), api_versions=(info.version,),
                resources=(info.plural,), operations=tuple(operations),  # type: ignore[arg-type]
                scope="Namespaced" if info.namespaced else "Cluster")
    slug = f"{info.group.replace('.', '-')}-{info.version}-{info.kind.lower()}"
    return rule, slug


@dataclass(frozen=True, kw_only=True)
class AdmissionWebhook(Generic[T]):
    """Settings shared by validating and mutating webhooks (one ``webhooks[]`` entry)."""

    name: str
    """Fully qualified webhook name, e.g. ``validator.kuar.com``."""
    path: str
    """URL path on the webhook server, e.g. ``/validate-beta-kuar-com-v1-loadtest``."""
    rules: tuple[AdmissionRule, ...]
    """Which resources and operations the API server sends."""
    codec: Codec[T] = RAW  # type: ignore[assignment]
    """How raw objects become ``T``; :data:`~kuar.webhook.codec.RAW` keeps dicts."""
    configuration: str = ""
    """Name of the configuration object holding this webhook (default: derived from name)."""
    failure_policy: FailurePolicy = "Fail"
    """What the API server does when the call fails; also applied here on timeout/crash.
    ``Fail`` is the safe default: an unreachable validator must not let bad objects in."""
    side_effects: SideEffects = "None"
    """``None``: no effects; ``NoneOnDryRun``: effects via :meth:`Admission.on_commit`."""
    timeout_seconds: int = 10
    """How long the API server waits (1-30 s; 10 is Kubernetes' default)."""
    handler_timeout: float | None = None
    """Time budget of the handler here; ``None`` is ``timeout_seconds - 1`` (min 0.5 s)."""
    namespace_selector: Mapping[str, Any] | None = None
    """A label selector on the object's namespace."""
    object_selector: Mapping[str, Any] | None = None
    """A label selector on the object."""
    match_conditions: tuple[MatchCondition, ...] = ()
    """CEL preconditions evaluated by the API server."""
    match_policy: Literal["Exact", "Equivalent"] = "Equivalent"
    """Equivalent: also called for the same resource through another served version."""

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(f"webhook {self.name}: path {self.path!r} must start with '/'")
        if not 1 <= self.timeout_seconds <= 30:
            raise ValueError(f"webhook {self.name}: timeout_seconds must be within 1..30")

    @property
    def budget(self) -> float:
        """Seconds the handler may take before the failure policy answers."""
        if self.handler_timeout is not None:
            return self.handler_timeout
        return max(0.5, self.timeout_seconds - 1.0)

    def _failure(self, uid: str, message: str, reason: str) -> dict[str, Any]:
        if self.failure_policy == "Ignore":
            return admission_response(
                uid, allowed=True,
                warnings=[f"{self.name}: {message}; allowed by failurePolicy Ignore"])
        return admission_response(uid, allowed=False, code=500, reason=reason, message=message)

    def _decode(self, raw: Mapping[str, Any] | None) -> T | None:
        return None if raw is None else self.codec.decode(raw)

    async def review(self, request: AdmissionRequest) -> dict[str, Any]:
        """Answer one request (never raises; see the module's guarantees)."""
        admission: Admission[T] = Admission(request)
        try:
            async with asyncio.timeout(self.budget):
                response = await self._review(admission)
                if response["response"]["allowed"] and admission._effects:
                    if self.side_effects == "None":
                        raise RuntimeError(
                            f"handler registered a side effect but webhook {self.name} "
                            "declares side_effects='None'")
                    if not request.dry_run:
                        for effect in admission._effects:
                            await _call(effect)
                return response
        except Denied as exc:
            return admission_response(
                request.uid, allowed=False, code=exc.code, reason=exc.reason,
                message=exc.message, causes=[c.to_wire() for c in exc.causes],
                warnings=exc.warnings)
        except TimeoutError:
            log.warning("webhook %s: handler timed out after %.1f s (uid %s)",
                        self.name, self.budget, request.uid)
            return self._failure(
                request.uid, f"handler timed out after {self.budget:g} s", "Timeout")
        except Exception as exc:
            log.exception("webhook %s: handler failed (uid %s)", self.name, request.uid)
            return self._failure(
                request.uid, f"internal error: {type(exc).__name__}", "InternalError")

    async def _review(self, admission: Admission[T]) -> dict[str, Any]:
        raise NotImplementedError

    def _decode_new(self, admission: Admission[T]) -> T | None:
        try:
            return self._decode(admission.request.object)
        except ValidationError as exc:
            raise Denied(causes=causes_from_error(exc)) from None


@dataclass(frozen=True, kw_only=True)
class ValidatingWebhook(AdmissionWebhook[T]):
    """A validating webhook: runs a :class:`Validator` on CREATE, UPDATE and DELETE."""

    validator: Validator[T]

    @classmethod
    def for_resource(
        cls, model: type[T], validator: Validator[T], *, name: str,
        operations: Sequence[Operation] = ("CREATE", "UPDATE"), path: str | None = None,
        codec: Codec[T] | None = None, **options: Any,
    ) -> ValidatingWebhook[T]:
        """Bind ``validator`` to a typed resource (``model.resource_info()`` gives the rule)."""
        rule, slug = _resource_rule(model, operations)
        return cls(name=name, path=path or f"/validate-{slug}", rules=(rule,),
                   codec=codec or Codec.of(model), validator=validator, **options)

    async def _review(self, admission: Admission[T]) -> dict[str, Any]:
        req = admission.request
        v = self.validator
        warnings: Warnings = None
        if req.operation == "CREATE":
            admission.object = self._decode_new(admission)
            if admission.object is None:
                raise Denied("request.object is missing", code=400, reason="BadRequest")
            warnings = await _call(v.validate_create, admission.object, admission)
        elif req.operation == "UPDATE":
            admission.object = self._decode_new(admission)
            admission.old_object = self._decode(req.old_object)
            if admission.object is None or admission.old_object is None:
                raise Denied("request.object and request.oldObject are required for UPDATE",
                             code=400, reason="BadRequest")
            warnings = await _call(v.validate_update, admission.old_object, admission.object,
                                   admission)
        elif req.operation == "DELETE":
            admission.old_object = self._decode(req.old_object)
            if admission.old_object is not None:
                warnings = await _call(v.validate_delete, admission.old_object, admission)
        return admission_response(req.uid, allowed=True, warnings=list(warnings or ()))


@dataclass(frozen=True, kw_only=True)
class MutatingWebhook(AdmissionWebhook[T]):
    """A mutating webhook: runs a :class:`Defaulter` on CREATE and UPDATE, answers a patch."""

    defaulter: Defaulter[T]
    reinvocation_policy: Literal["Never", "IfNeeded"] = "Never"
    """IfNeeded: call again if a later mutating webhook changed the object."""

    @classmethod
    def for_resource(
        cls, model: type[T], defaulter: Defaulter[T], *, name: str,
        operations: Sequence[Operation] = ("CREATE", "UPDATE"), path: str | None = None,
        codec: Codec[T] | None = None, **options: Any,
    ) -> MutatingWebhook[T]:
        """Bind ``defaulter`` to a typed resource (``model.resource_info()`` gives the rule)."""
        rule, slug = _resource_rule(model, operations)
        return cls(name=name, path=path or f"/mutate-{slug}", rules=(rule,),
                   codec=codec or Codec.of(model), defaulter=defaulter, **options)

    async def _review(self, admission: Admission[T]) -> dict[str, Any]:
        req = admission.request
        if req.operation not in ("CREATE", "UPDATE") or req.object is None:
            return admission_response(req.uid, allowed=True)
        obj = self._decode_new(admission)
        assert obj is not None
        admission.object = obj
        if req.operation == "UPDATE":
            admission.old_object = self._decode(req.old_object)
        result = await _call(self.defaulter.default, obj, admission)
        after = self.codec.encode(result if result is not None else obj)
        patch = json_patch(req.object, after)
        return admission_response(req.uid, allowed=True, patch=patch)
