"""A request mix: methods, headers and bodies with weights, as an exact open-loop rotation.

Place in the pipeline: :class:`~kuar_loadgen.spec.LoadSpec` holds the mix (``requests``);
:mod:`kuar_loadgen.worker` builds each kind's bytes once (:func:`wire`) and sends request ``i``
as kind ``order[i % len(order)]``, where :func:`weighted_order` spreads the kinds by weight
(smooth weighted round robin). So over any run of ``sum(weights)`` consecutive requests, each
kind is sent exactly ``weight`` times, and the counts of a whole run are exact and known in
advance (shards split indices, not kinds).

A body comes inline (``body``), from a file (``body_file``: a LoadTest pod gets a ConfigMap or
Secret key as a file of its run volume, so the Job never holds a Secret's value) or from an
environment variable (``body_env``, the same through ``valueFrom``). Bodies are never logged
or written into results; errors name the field or the file, not the value.

Caveats: a body in the environment of a process is limited by Linux to 128 KiB per variable
(``MAX_ARG_STRLEN``): files carry bodies up to :data:`MAX_BODY`; HEAD is not offered (its
responses have no body, which the client's parser would wait for).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
"""Methods a request may use."""
MAX_BODY = 1024 * 1024
"""Largest body in bytes (1 MiB)."""
MAX_KINDS = 50
"""Most request kinds in a mix."""
MAX_WEIGHT_SUM = 10_000
"""Largest sum of weights (the rotation's length)."""
BODY_ENV_PREFIX = "KUAR_LOADGEN_BODY_"
"""Environment variables that may carry a body: this prefix plus the request's index."""
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class MixError(ValueError):
    """The mix is invalid; the message names the field (``requests[1].weight``)."""


@dataclass(frozen=True, kw_only=True)
class RequestKind:
    """One kind of request in the mix."""

    method: str = "GET"
    """One of :data:`METHODS`."""
    path: str = "/"
    """Path and query, starting with ``/``."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra headers (after the spec's own)."""
    body: str = ""
    """Inline body (UTF-8)."""
    body_env: str = ""
    """Name of the environment variable holding the body instead (see the module doc)."""
    body_file: str = ""
    """A file holding the body instead: a path, relative to the spec file's folder when the
    spec came from one (``kuar-loadgen --spec-file``)."""
    weight: int = 1
    """Share of the mix; 0 leaves the kind out."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"method": self.method, "path": self.path,
                "headers": [list(h) for h in self.headers], "body": self.body,
                "body_env": self.body_env, "body_file": self.body_file, "weight": self.weight}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], index: int) -> RequestKind:
        """Read one kind; unknown keys and wrong types are :class:`MixError`."""
        known = {"method", "path", "headers", "body", "body_env", "body_file", "weight"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MixError(f"requests[{index}]: unknown field(s) {', '.join(unknown)}")
        try:
            headers = data.get("headers") or ()
            pairs = headers.items() if isinstance(headers, Mapping) else headers
            weight = data.get("weight", 1)
            if isinstance(weight, bool) or not isinstance(weight, int):
                raise MixError(f"requests[{index}].weight: expected an integer")
            return cls(method=str(data.get("method", "GET")), path=str(data.get("path", "/")),
                       headers=tuple((str(k), str(v)) for k, v in pairs),
                       body=str(data.get("body", "")), body_env=str(data.get("body_env", "")),
                       body_file=str(data.get("body_file", "")), weight=weight)
        except (TypeError, ValueError) as e:
            if isinstance(e, MixError):
                raise
            raise MixError(f"requests[{index}]: {e}") from None


def check_mix(kinds: Sequence[RequestKind], path_problem: Any) -> None:
    """Raise :class:`MixError` naming the first bad field (``path_problem`` is the spec's)."""
    if len(kinds) > MAX_KINDS:
        raise MixError(f"requests: at most {MAX_KINDS}, got {len(kinds)}")
    for i, k in enumerate(kinds):
        where = f"requests[{i}]"
        if k.method not in METHODS:
            raise MixError(f"{where}.method: one of {', '.join(METHODS)}; got {k.method!r}")
        problem = path_problem(k.path)
        if problem is not None:
            raise MixError(f"{where}.path: {problem}")
        for name, value in k.headers:
            if not _TOKEN.match(name):
                raise MixError(f"{where}.headers: invalid header name {name!r}")
            if name.lower() in ("content-length", "host", "transfer-encoding"):
                raise MixError(f"{where}.headers: {name} is set by the load generator")
            if not value.isascii() or any((ord(c) < 32 and c != "\t") or ord(c) == 127
                                          for c in value):
                raise MixError(f"{where}.headers: value of {name} must be printable ASCII")
        if not 0 <= k.weight <= MAX_WEIGHT_SUM:
            raise MixError(f"{where}.weight: must be between 0 and {MAX_WEIGHT_SUM}")
        if sum(1 for b in (k.body, k.body_env, k.body_file) if b) > 1:
            raise MixError(f"{where}: body, body_env and body_file are exclusive")
        if k.body_env and not k.body_env.startswith(BODY_ENV_PREFIX):
            raise MixError(f"{where}.body_env: must start with {BODY_ENV_PREFIX}")
        if len(k.body.encode()) > MAX_BODY:
            raise MixError(f"{where}.body: larger than 1 MiB")
    if kinds:
        total = sum(k.weight for k in kinds)
        if total == 0:
            raise MixError("requests: every weight is 0; at least one must be above 0")
        if total > MAX_WEIGHT_SUM:
            raise MixError(f"requests: the weights add up to {total}, more than "
                           f"{MAX_WEIGHT_SUM}")


def body_of(kind: RequestKind, index: int, environ: Mapping[str, str] | None = None) -> bytes:
    """The kind's body bytes; a missing variable or file is a :class:`MixError` naming it."""
    if kind.body_file:
        try:
            with open(kind.body_file, "rb") as f:
                data = f.read(MAX_BODY + 1)
        except OSError as e:
            raise MixError(f"requests[{index}].body_file: {kind.body_file}: "
                           f"{e.strerror or e}") from None
        if len(data) > MAX_BODY:
            raise MixError(f"requests[{index}].body_file: {kind.body_file} is larger than "
                           "1 MiB")
        return data
    if not kind.body_env:
        return kind.body.encode()
    env = os.environ if environ is None else environ
    value = env.get(kind.body_env)
    if value is None:
        raise MixError(f"requests[{index}].body_env: {kind.body_env} is not set")
    data = value.encode()
    if len(data) > MAX_BODY:
        raise MixError(f"requests[{index}].body_env: {kind.body_env} is larger than 1 MiB")
    return data


def weighted_order(weights: Sequence[int]) -> list[int]:
    """Kind indices in smooth weighted round robin: each appears ``weight`` times, spread."""
    total = sum(weights)
    current = [0] * len(weights)
    order: list[int] = []
    for _ in range(total):
        for k, w in enumerate(weights):
            current[k] += w
        best = max((k for k in range(len(weights)) if weights[k] > 0),
                   key=lambda k: current[k])
        current[best] -= total
        order.append(best)
    return order


def exact_counts(weights: Sequence[int], requests: int) -> list[int]:
    """How many requests of each kind a run of ``requests`` sends."""
    order = weighted_order(weights)
    counts = [0] * len(weights)
    full, rest = divmod(requests, len(order))
    for k in order:
        counts[k] += full
    for k in order[:rest]:
        counts[k] += 1
    return counts


def wire(method: str, path: str, host_header: str, user_agent: str,
         headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
    """The request's bytes (built once, sent many times)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}",
             f"User-Agent: {user_agent}", "Accept: */*"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body
