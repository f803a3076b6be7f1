"""The error tree of the Kubernetes API, built from the ``Status`` object the server returns.

Place in the pipeline: raised by :mod:`kuar.client.transport` for every non-2xx answer;
consumed by callers, the runtime (retry decisions) and the CLI (one readable line).

Known as ``k8s.io/apimachinery/pkg/api/errors`` in client-go and ``kube::Error::Api`` in
kube-rs. Each class maps to one HTTP status / Status ``reason``; match on the class, not on
message text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Cause:
    """One field-level cause of an ``Invalid`` error (``details.causes[]``)."""

    field: str
    reason: str
    message: str


@dataclass
class ApiError(Exception):
    """A non-success answer from the API server.

    ``code`` is the HTTP status, ``reason`` the Status reason (e.g. ``NotFound``),
    ``message`` the server's human-readable text, ``causes`` the field causes.
    """

    code: int
    reason: str
    message: str
    causes: tuple[Cause, ...] = field(default=())
    retry_after: float | None = None
    status: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.message} ({self.reason}, HTTP {self.code})"


class BadRequest(ApiError):
    """400: the request itself is malformed."""


class Unauthorized(ApiError):
    """401: no or invalid credentials."""


class Forbidden(ApiError):
    """403: authenticated, but RBAC (or an admission webhook) says no."""


class NotFound(ApiError):
    """404: the object or the resource type does not exist."""


class MethodNotAllowed(ApiError):
    """405: the verb is not supported on this resource."""


class Conflict(ApiError):
    """409 with reason Conflict: a stale resourceVersion (optimistic concurrency)."""


class AlreadyExists(Conflict):
    """409 with reason AlreadyExists: create of an existing name."""


class Gone(ApiError):
    """410: the requested resourceVersion was compacted away; relist."""


class Invalid(ApiError):
    """422: the object fails validation; see ``causes`` for the fields."""


class TooManyRequests(ApiError):
    """429: slow down; ``retry_after`` carries the server's Retry-After seconds."""


class ServerError(ApiError):
    """5xx other than a server timeout."""


class ServerTimeout(ServerError):
    """504 or reason ServerTimeout/Timeout: the server gave up; retrying is safe."""


_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
    504: ServerTimeout,
}


def error_from_status(
    code: int, body: Any, *, retry_after: str | None = None, fallback: str = ""
) -> ApiError:
    """Build the most specific :class:`ApiError` for an HTTP status and its body.

    ``body`` is the decoded JSON body when it was JSON (normally a ``Status``), else ``None``.
    """
    status: dict[str, Any] = body if isinstance(body, dict) else {}
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or fallback or f"HTTP {code}")
    details = status.get("details") or {}
    causes = tuple(
        Cause(str(c.get("field", "")), str(c.get("reason", "")), str(c.get("message", "")))
        for c in (details.get("causes") or [])
        if isinstance(c, dict)
    )
    cls: type[ApiError]
    if code == 409 and reason == "AlreadyExists":
        cls = AlreadyExists
    elif reason in ("ServerTimeout", "Timeout"):
        cls = ServerTimeout
    elif code in _BY_CODE:
        cls = _BY_CODE[code]
    elif code >= 500:
        cls = ServerError
    else:
        cls = ApiError
    seconds: float | None = None
    if retry_after is not None:
        try:
            seconds = float(retry_after)
        except ValueError:
            seconds = None
    if seconds is None and isinstance(details.get("retryAfterSeconds"), int):
        seconds = float(details["retryAfterSeconds"])
    return cls(
        code=code,
        reason=reason or cls.__name__,
        message=message,
        causes=causes,
        retry_after=seconds,
        status=status,
    )


class TransportError(Exception):
    """The API server could not be reached or the connection broke mid-request.

    Not an answer from the server: the request may or may not have been applied.
    """
