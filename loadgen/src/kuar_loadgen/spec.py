"""What one load-generator pod must do: the worker's single contract with the controller.

Place in the pipeline: the LoadTest controller builds a :class:`LoadSpec` and hands it to a pod
as the JSON environment variable ``KUAR_LOADGEN_SPEC`` (:meth:`LoadSpec.to_env`); the pod's
``kuar-loadgen`` reads it back with :func:`spec_from_env`, lets CLI flags override single
fields, and runs it (:mod:`kuar_loadgen.runner`). Standalone users only use the flags.

Guarantees:

- A :class:`LoadSpec` is validated when built; an invalid one raises :class:`SpecError` (a
  ``ValueError``) naming the field, so a pod fails fast with a readable message.
- ``to_dict``/``from_dict`` round-trip exactly; unknown keys are refused (typos in a pod spec
  are errors, not silently ignored defaults).
- Sharding is exact: with ``shard_count = N`` every pod gets the same ``rps`` (the *total*
  rate) and issues the global requests ``i`` with ``i % N == shard_index``, so N pods together
  issue exactly the schedule of one pod at the total rate (see :mod:`kuar_loadgen.schedule`).

- Nothing in a spec can break the request: URLs, ``paths`` and ``headers`` with control
  characters or spaces (CR/LF would inject headers) are refused naming the field
  (``paths[1]: ...``), and non-ASCII in a path or query is sent percent-encoded as UTF-8
  (``/€`` goes out as ``/%E2%82%AC``; ``%XX`` already there is kept), so any spec that builds
  is sendable. :func:`path_problem` is the rule the LoadTest webhook applies too.

Caveats: ``resolve`` works like ``curl --resolve``: the URL's host still names the server (Host
header, TLS server name and certificate check); only the TCP address changes.
"""

from __future__ import annotations

import json
import math
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from kuar_loadgen.mix import MixError, RequestKind, check_mix
from kuar_loadgen.stages import RateProfile, Stage, StageError, check_stages
from kuar_loadgen.thresholds import ThresholdError, parse_thresholds

SPEC_ENV = "KUAR_LOADGEN_SPEC"
"""Environment variable holding the whole spec as a JSON object (the pod-friendly form)."""

JOB_INDEX_ENV = "JOB_COMPLETION_INDEX"
"""Set by Kubernetes in pods of an Indexed Job; used as ``shard_index`` when none is given."""

RESOLVE_ENV = "KUAR_RESOLVE"
"""A JSON map ``{"host:port": "address:port"}`` given by kuar's local node (its stand-in for
cluster DNS and kube-proxy); merged under the spec's own ``resolve`` entries."""

LoopKind = Literal["auto", "uvloop", "asyncio"]


class SpecError(ValueError):
    """The spec is invalid; the message names the field."""


@dataclass(frozen=True, kw_only=True)
class Target:
    """One URL resolved for the client: where to connect and what to send."""

    url: str
    """The URL as given (after joining a path)."""
    scheme: str
    """``http`` or ``https``."""
    host: str
    """Host name of the URL: Host header, TLS server name and certificate check use it."""
    port: int
    """Port of the URL (80/443 when the URL has none)."""
    connect_host: str
    """Address actually dialled: ``host`` unless ``resolve`` maps ``host:port`` elsewhere."""
    connect_port: int
    """Port actually dialled."""
    path: str
    """Request target: path plus query string, at least ``/``."""

    @property
    def origin(self) -> tuple[str, str, int, str, int]:
        """Key of the connection pool: requests with equal origins share connections."""
        return (self.scheme, self.connect_host, self.connect_port, self.host, self.port)

    @property
    def host_header(self) -> str:
        """Value of the Host header (the port is left out when it is the scheme's default)."""
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class LoadSpec:
    """An open-loop, constant-arrival-rate load: ``rps`` requests/s for ``duration`` seconds."""

    urls: tuple[str, ...]
    """Targets, ``http://`` or ``https://``; requests go round robin over them (after ``paths``)."""
    rps: float
    """Total arrival rate over all shards, requests per second (> 0)."""
    duration: float
    """Length of the run in seconds: requests are due in ``[t0, t0 + duration)``."""
    paths: tuple[str, ...] = ()
    """If given, each URL's path is replaced by each of these (LoadTest's ``spec.paths``)."""
    timeout: float = 10.0
    """Per-request limit in seconds, counted from the due time (pool waits included), like a
    user who gives up; a request that waited half of it for a connection is dropped, not sent
    (:mod:`kuar_loadgen._client`). 10 s is longer than any healthy service answers and short
    enough that a dead target does not pile up more than ``rps * 10`` outstanding requests."""
    processes: int = 0
    """Worker processes in this pod; 0 means one per available core (affinity and cgroup
    quota), because one Python process uses one core."""
    connections: int = 256
    """Keep-alive connections per process at most. Open loop needs ``rate * latency`` of them
    (1,000 rps at 250 ms); beyond that requests wait for a connection, still timed from due,
    and are dropped once they have waited half the timeout."""
    resolve: Mapping[str, str] = field(default_factory=dict)
    """``"host:port" -> "address:port"`` overrides, like ``curl --resolve``."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra request headers."""
    shard_index: int = 0
    """Which shard this pod is, ``0 <= shard_index < shard_count``."""
    shard_count: int = 1
    """How many pods share ``rps``."""
    start_at: float | None = None
    """Wall-clock start (Unix seconds) shared by all shards so their schedules interleave;
    ``None`` starts as soon as the workers are ready. A start already past begins now."""
    insecure: bool = False
    """Skip TLS certificate verification (self-signed test services)."""
    ca_file: str | None = None
    """PEM bundle to verify HTTPS targets with, instead of the system store."""
    loop: LoopKind = "auto"
    """Event loop: ``auto`` uses uvloop when installed (measured faster, see
    docs/decisions), ``asyncio`` forces the standard loop."""
    stages: tuple[tuple[float, float], ...] = ()
    """A rate profile instead of the constant ``rps``: ``(duration s, target req/s)`` pairs,
    linear ramps from ``start_rate`` (:mod:`kuar_loadgen.stages`). ``duration`` must then be
    their sum and ``rps`` their peak (:func:`staged` builds such a spec)."""
    start_rate: float = 0.0
    """The rate the first stage ramps from (only with ``stages``)."""
    requests: tuple[RequestKind, ...] = ()
    """A request mix instead of GETs of ``paths`` (:mod:`kuar_loadgen.mix`): each kind's
    method, path, headers, body and weight; all go to the first URL's origin."""
    thresholds: tuple[str, ...] = ()
    """Pass/fail conditions on the result (:mod:`kuar_loadgen.thresholds`): ``p99 < 50ms``."""
    abort_on_fail: bool = False
    """Stop sending once an abortable threshold is crossed for good (checked every second on
    the run so far)."""

    def __post_init__(self) -> None:
        _validate(self)

    # -- derived values -------------------------------------------------------------------

    def targets(self) -> tuple[Target, ...]:
        """The resolved targets, in round-robin order (with ``requests``: one per kind)."""
        if self.requests:
            return tuple(self._target(self.urls[0], encode_path(k.path)) for k in self.requests)
        out: list[Target] = []
        for url in self.urls:
            parts = urlsplit(url)
            query = f"?{parts.query}" if parts.query else ""
            paths = self.paths or ((parts.path or "/") + query,)
            for path in paths:
                out.append(self._target(url, encode_path(path)))
        return tuple(out)

    def _target(self, url: str, path: str) -> Target:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        connect_host, connect_port = host, port
        mapped = self.resolve.get(f"{host}:{port}")
        if mapped is not None:
            connect_host, connect_port = _split_host_port(mapped, "resolve")
        full = f"{parts.scheme}://{parts.netloc}{path}"
        return Target(url=full, scheme=parts.scheme, host=host, port=port,
                      connect_host=connect_host, connect_port=connect_port, path=path)

    @property
    def shard_rps(self) -> float:
        """The rate this pod issues on average: its share of the total."""
        return self.mean_rps / self.shard_count

    @property
    def mean_rps(self) -> float:
        """The run's average rate: ``rps``, or the stages' requests over their duration."""
        if not self.stages:
            return self.rps
        profile = self.profile()
        return profile.total / profile.duration

    def profile(self) -> RateProfile:
        """The rate over time: constant ``rps``, or the stages."""
        if not self.stages:
            return RateProfile.constant(self.rps, self.duration)
        return RateProfile(self.start_rate, [Stage(d, r) for d, r in self.stages])

    # -- serialisation ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        d = asdict(self)
        d["urls"] = list(self.urls)
        d["paths"] = list(self.paths)
        d["headers"] = [list(h) for h in self.headers]
        d["resolve"] = dict(self.resolve)
        d["stages"] = [list(s) for s in self.stages]
        d["thresholds"] = list(self.thresholds)
        d["requests"] = [k.to_dict() for k in self.requests]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoadSpec:
        """Build from a mapping such as the JSON of :data:`SPEC_ENV`; unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"unknown spec field(s): {', '.join(unknown)}")
        kw = dict(data)
        try:
            for key in ("urls", "paths", "thresholds"):
                if key in kw:
                    kw[key] = _str_tuple(kw[key], key)
            if "headers" in kw:
                kw["headers"] = tuple((str(k), str(v)) for k, v in _pairs(kw["headers"]))
            if "requests" in kw:
                kw["requests"] = tuple(RequestKind.from_dict(dict(r), i)
                                       for i, r in enumerate(kw["requests"]))
            if "stages" in kw:
                kw["stages"] = tuple((float(d), float(r)) for d, r in _pairs(kw["stages"]))
            if "start_rate" in kw:
                kw["start_rate"] = float(kw["start_rate"])
            if "resolve" in kw:
                kw["resolve"] = {str(k): str(v) for k, v in dict(kw["resolve"]).items()}
            for key in ("rps", "duration", "timeout"):
                if key in kw:
                    kw[key] = float(kw[key])
            if kw.get("start_at") is not None:
                kw["start_at"] = float(kw["start_at"])
            for key in ("processes", "connections", "shard_index", "shard_count"):
                if key in kw:
                    kw[key] = _int(kw[key], key)
        except (TypeError, ValueError) as e:
            if isinstance(e, SpecError):
                raise
            raise SpecError(f"bad spec value: {e}") from e
        if "urls" not in kw or "rps" not in kw or "duration" not in kw:
            raise SpecError("spec needs urls, rps and duration")
        return cls(**kw)

    def to_json(self) -> str:
        """Compact JSON of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    def to_env(self) -> dict[str, str]:
        """Environment for a pod: ``{KUAR_LOADGEN_SPEC: json}``."""
        return {SPEC_ENV: self.to_json()}


def staged(stages: Iterable[tuple[float, float]], *, start_rate: float = 0.0,
           **fields_: Any) -> LoadSpec:
    """A :class:`LoadSpec` running ``stages`` (``rps`` and ``duration`` derived from them)."""
    pairs = tuple((float(d), float(r)) for d, r in stages)
    return LoadSpec(rps=max([start_rate, *(r for _, r in pairs)]) or 1.0,
                    duration=sum(d for d, _ in pairs) or 1.0, stages=pairs,
                    start_rate=start_rate, **fields_)


def spec_from_env(environ: Mapping[str, str] | None = None, *,
                  base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The spec fields found in the environment (possibly incomplete; flags may add the rest).

    Reads :data:`SPEC_ENV` (a JSON object), or takes ``base`` instead (a spec file's fields,
    :func:`spec_from_file`); ``shard_index`` falls back to :data:`JOB_INDEX_ENV`, so an
    Indexed Job needs no per-pod environment, and :data:`RESOLVE_ENV` is merged under the
    spec's own ``resolve`` either way.
    """
    env = os.environ if environ is None else environ
    data: dict[str, Any] = dict(base or {})
    raw = env.get(SPEC_ENV) if base is None else None
    if raw:
        try:
            loaded = json.loads(raw)
        except json.JSONDecodeError as e:
            raise SpecError(f"{SPEC_ENV} is not valid JSON: {e}") from e
        if not isinstance(loaded, dict):
            raise SpecError(f"{SPEC_ENV} must be a JSON object")
        data.update(loaded)
    if "shard_index" not in data and env.get(JOB_INDEX_ENV):
        data["shard_index"] = _int(env[JOB_INDEX_ENV], JOB_INDEX_ENV)
    if env.get(RESOLVE_ENV):
        try:
            routes = json.loads(env[RESOLVE_ENV])
        except json.JSONDecodeError as e:
            raise SpecError(f"{RESOLVE_ENV} is not valid JSON: {e}") from e
        if not isinstance(routes, dict):
            raise SpecError(f"{RESOLVE_ENV} must be a JSON object")
        data["resolve"] = {**{str(k): str(v) for k, v in routes.items()},
                           **dict(data.get("resolve") or {})}
    return data


def spec_from_file(path: str) -> dict[str, Any]:
    """The spec fields of a JSON file (``--spec-file``: a LoadTest pod's run volume).

    A request's relative ``body_file`` is taken relative to the file's folder, where the run
    volume puts each body. An unreadable or invalid file is a :class:`SpecError` naming it.
    """
    try:
        with open(path, encoding="utf-8") as f:
            loaded = json.load(f)
    except OSError as e:
        raise SpecError(f"--spec-file {path}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SpecError(f"--spec-file {path} is not valid JSON: {e}") from None
    if not isinstance(loaded, dict):
        raise SpecError(f"--spec-file {path} must hold a JSON object")
    folder = os.path.dirname(os.path.abspath(path))
    for request in loaded.get("requests") or []:
        if isinstance(request, dict) and request.get("body_file"):
            request["body_file"] = os.path.join(folder, str(request["body_file"]))
    return loaded


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot be sent as a request target, or ``None`` when it can.

    A path starts with ``/`` and holds no whitespace and no control characters (Unicode
    category Cc: CR/LF would end the request line and inject headers); non-ASCII is fine
    (:func:`encode_path` percent-encodes it). Used by the worker and the LoadTest webhook.
    """
    if not path.startswith("/"):
        return "must start with '/'"
    for i, c in enumerate(path):
        if c.isspace() or unicodedata.category(c) == "Cc":
            return (f"must not contain spaces or control characters ({c!r} at {i}); "
                    "percent-encode them, e.g. %20 for a space")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    return None


def encode_path(path: str) -> str:
    """``path`` with every non-ASCII character percent-encoded as UTF-8; ASCII kept as is.

    ``%XX`` sequences already present are left alone (no double encoding), so encoding is
    idempotent. ``path`` must pass :func:`path_problem`.
    """
    if path.isascii():
        return path
    return "".join(c if c.isascii() else quote(c, safe="") for c in path)


def parse_resolve(items: Iterable[str]) -> dict[str, str]:
    """Parse ``--resolve`` items: ``HOST:PORT:ADDR`` (curl) or ``HOST:PORT=ADDR:PORT``."""
    out: dict[str, str] = {}
    for item in items:
        if "=" in item:
            key, _, value = item.partition("=")
            _split_host_port(key, "resolve")
            _split_host_port(value, "resolve")
        else:
            host, port, addr = [*item.split(":", 2), "", ""][:3]
            if not (host and port and addr):
                raise SpecError(
                    f"resolve: expected HOST:PORT:ADDR or HOST:PORT=ADDR:PORT: {item!r}")
            key, value = f"{host}:{port}", f"{addr}:{port}"
            _split_host_port(key, "resolve")
        out[key] = value
    return out


def parse_header(item: str) -> tuple[str, str]:
    """Parse a ``Name: value`` header."""
    name, sep, value = item.partition(":")
    if not sep or not name.strip():
        raise SpecError(f"header: expected 'Name: value': {item!r}")
    return name.strip(), value.strip()


def available_cpus(cpu_max: str = "/sys/fs/cgroup/cpu.max") -> int:
    """Cores this process may use: CPU affinity, capped by a cgroup v2 CPU quota.

    The quota is a pod's CPU limit, rounded up: a 1.5-CPU limit gets 2 processes.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        with open(cpu_max) as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


# -- validation helpers ---------------------------------------------------------------------


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
"""An HTTP field name (RFC 9110 token)."""


def _validate(s: LoadSpec) -> None:
    if not s.urls:
        raise SpecError("urls: at least one URL is needed")
    for i, url in enumerate(s.urls):
        if any(c.isspace() or unicodedata.category(c) == "Cc" for c in url):
            raise SpecError(f"urls[{i}]: must not contain spaces or control characters: "
                            f"{url!r}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise SpecError(f"urls: only http:// and https:// are supported: {url!r}")
        if not parts.hostname:
            raise SpecError(f"urls: no host in {url!r}")
        if not parts.hostname.isascii():
            raise SpecError(f"urls[{i}]: the host must be ASCII (its IDNA xn-- form): {url!r}")
        try:
            _ = parts.port
        except ValueError as e:
            raise SpecError(f"urls: bad port in {url!r}") from e
        problem = path_problem((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        if problem is not None:
            raise SpecError(f"urls[{i}]: path {problem}: {url!r}")
    for i, p in enumerate(s.paths):
        problem = path_problem(p)
        if problem is not None:
            raise SpecError(f"paths[{i}]: {problem}: {p!r}")
    if s.stages or s.start_rate:  # first: a bad stage also makes rps/duration bad
        try:
            check_stages(s.start_rate, [Stage(d, r) for d, r in s.stages])
        except StageError as e:
            raise SpecError(str(e)) from None
        total = sum(d for d, _ in s.stages)
        if abs(total - s.duration) > 1e-6:
            raise SpecError(f"duration: must be the stages' sum {total:g}, got {s.duration}")
    if not (math.isfinite(s.rps) and s.rps > 0):
        raise SpecError(f"rps: must be > 0, got {s.rps}")
    if not (math.isfinite(s.duration) and s.duration > 0):
        raise SpecError(f"duration: must be > 0, got {s.duration}")
    if not (math.isfinite(s.timeout) and s.timeout > 0):
        raise SpecError(f"timeout: must be > 0, got {s.timeout}")
    if s.processes < 0:
        raise SpecError(f"processes: must be >= 0, got {s.processes}")
    if s.connections < 1:
        raise SpecError(f"connections: must be >= 1, got {s.connections}")
    if s.shard_count < 1 or not 0 <= s.shard_index < s.shard_count:
        raise SpecError(f"shard_index/shard_count: need 0 <= {s.shard_index} < {s.shard_count}")
    try:
        check_mix(s.requests, path_problem)
    except MixError as e:
        raise SpecError(str(e)) from None
    try:
        parse_thresholds(s.thresholds)
    except ThresholdError as e:
        raise SpecError(str(e)) from None
    if s.loop not in ("auto", "uvloop", "asyncio"):
        raise SpecError(f"loop: one of auto, uvloop, asyncio; got {s.loop!r}")
    for key, value in s.resolve.items():
        _split_host_port(key, "resolve")
        _split_host_port(value, "resolve")
    for name, value in s.headers:
        if not _TOKEN.match(name):
            raise SpecError(f"headers: invalid header name {name!r}")
        if not value.isascii() or any(unicodedata.category(c) == "Cc" and c != "\t"
                                      for c in value):
            raise SpecError(f"headers: value of {name} must be printable ASCII: {value!r}")


def _split_host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SpecError(f"{what}: expected HOST:PORT, got {text!r}")
    return host, int(port)


def _str_tuple(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise SpecError(f"{key}: expected a list of strings")
    return tuple(str(v) for v in value)


def _pairs(value: Any) -> Iterable[tuple[Any, Any]]:
    if isinstance(value, Mapping):
        return list(value.items())
    return [tuple(v) for v in value]


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise SpecError(f"{key}: expected an integer, got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError) as e:
        raise SpecError(f"{key}: expected an integer, got {value!r}") from e
    if not f.is_integer():
        raise SpecError(f"{key}: expected an integer, got {value!r}")
    return int(f)
