"""The start barrier: a worker waits for the start time its run's controller writes in the API.

Place in the pipeline: :mod:`kuar_loadgen.runner` calls :meth:`RunStart.wait` once every
worker process of the pod is set up (imports done, connections opening); the start time it
returns is the shared ``t0`` of the schedule. The LoadTest controller writes that time, once,
into ``status.startAt`` of the run's LoadTestRun (``beta.kuar.com/v1``) when every worker pod
of the run is Running (``kuar_loadtest.start``). The CLI (:mod:`kuar_loadgen.cli`) builds a
:class:`RunStart` from ``--start-from-run`` and the pod's in-cluster environment.

How: one watch request, ``GET .../loadtestruns?fieldSelector=metadata.name=RUN&watch=1``,
authenticated with the pod's projected service-account token and verified against the
cluster's CA (``kube-root-ca.crt``). A watch without a resourceVersion begins with the object
as it is (an ``ADDED`` event), so a worker that connects after the time was written still
reads it; later changes come as ``MODIFIED``. The work is one watch per worker, and the
controller writes once whatever the number of workers (no starter that calls each worker).

Guarantees:

- :meth:`RunStart.wait` returns the written start time in Unix seconds (possibly already
  past: the runner then starts at once, and the lateness shows in the run's start skew);
- it retries a refused or broken watch (401/403 while the RBAC binding reaches the
  authorizer, a connection reset, the API server restarting) with backoff, re-reading the
  token file each time (the kubelet rotates it), until ``timeout`` seconds have passed; then
  it raises :class:`StartError` naming the run and the last problem seen;
- a run that is deleted while a worker waits raises :class:`StartError` at once.

The token is sent only to the API server given, over TLS, and never printed.
Caveat: this module uses only the standard library (``http.client``), so the load-worker
image needs nothing more; it does not import kuar (the worker's own contract).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

RUN_GROUP_VERSION = "beta.kuar.com/v1"
"""The API group and version of LoadTestRun, the object whose ``status.startAt`` is read."""
RUN_PLURAL = "loadtestruns"
"""LoadTestRun's resource name."""
START_FIELD = "startAt"
"""The status field the controller writes: an RFC 3339 time (with milliseconds)."""
SERVICE_HOST_ENV = "KUBERNETES_SERVICE_HOST"
"""The API server's address in a pod (set by the kubelet; kuar's process node sets it too)."""
SERVICE_PORT_ENV = "KUBERNETES_SERVICE_PORT"
"""The API server's port in a pod."""
WATCH_SECONDS = 60
"""How long one watch request may stay open before it is made again (the server ends it)."""
MAX_BACKOFF = 2.0
"""Longest pause between two attempts of a refused or broken watch, in seconds."""


class StartError(RuntimeError):
    """No start time could be had: the message names the run and the last problem."""


@dataclass(frozen=True, kw_only=True)
class RunStart:
    """Where to read the run's start time, and how long to wait for it."""

    namespace: str
    """The run's namespace (the LoadTest's)."""
    name: str
    """The LoadTestRun's name (the run's Job has the same name)."""
    server: str
    """The API server's base URL, ``https://HOST:PORT``."""
    token_file: str
    """A file holding a bearer token (a projected service-account token)."""
    ca_file: str | None = None
    """PEM bundle to verify the API server with (``None``: the system store)."""
    timeout: float = 600.0
    """Seconds to wait for a start time before giving up (:class:`StartError`)."""

    @property
    def path(self) -> str:
        """The watch request's path and query."""
        selector = quote(f"metadata.name={self.name}", safe="")
        return (f"/apis/{RUN_GROUP_VERSION}/namespaces/{quote(self.namespace, safe='')}/"
                f"{RUN_PLURAL}?fieldSelector={selector}&watch=1")

    def describe(self) -> str:
        """``LoadTestRun NS/NAME`` for messages."""
        return f"LoadTestRun {self.namespace}/{self.name}"

    def check(self) -> None:
        """Raise :class:`StartError` unless the server URL, token and CA files are usable.

        Called before anything runs, so a wrong path fails fast (bad input).
        """
        parts = urlsplit(self.server)
        if parts.scheme != "https" or not parts.hostname:
            raise StartError(f"API server {self.server!r}: expected https://HOST:PORT")
        _read_token(self.token_file)
        try:
            _tls(self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise StartError(f"--api-ca-file {self.ca_file}: {_why(exc)}") from None

    def wait(self, *, clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> float:
        """The run's start time in Unix seconds, once the controller has written it."""
        deadline = clock() + self.timeout
        delay, last = 0.2, "no answer yet"
        while True:
            remaining = deadline - clock()
            if remaining <= 0:
                raise StartError(f"no start time for {self.describe()} within "
                                 f"{self.timeout:g}s (last: {last}); the controller writes it "
                                 "once every worker pod of the run is Running")
            try:
                found = self._watch_once(min(remaining, WATCH_SECONDS))
            except _Gone as exc:
                raise StartError(f"{self.describe()}: {exc}") from None
            except (OSError, http.client.HTTPException, ssl.SSLError, ValueError,
                    StartError) as exc:  # StartError: the token file mid-rotation
                last = _why(exc)
            else:
                if found is not None:
                    return found
                last = "the watch ended without a start time"
                delay = 0.2  # a normal end of the watch: reconnect at once
                continue
            sleep(min(delay, max(0.0, deadline - clock())))
            delay = min(delay * 2, MAX_BACKOFF)

    def _watch_once(self, seconds: float) -> float | None:
        parts = urlsplit(self.server)
        conn = http.client.HTTPSConnection(
            parts.hostname or "", parts.port or 443, context=_tls(self.ca_file),
            timeout=seconds + 5)  # the server ends the watch after ``seconds``
        try:
            conn.request("GET", f"{self.path}&timeoutSeconds={max(1, int(seconds))}", headers={
                "Authorization": f"Bearer {_read_token(self.token_file)}",
                "Accept": "application/json", "User-Agent": "kuar-loadgen/1"})
            response = conn.getresponse()
            if response.status != 200:
                raise _refused(response)
            while True:
                line = response.readline()
                if not line:
                    return None
                found = start_from_event(json.loads(line))
                if found is not None:
                    return found
        finally:
            conn.close()


class _Gone(Exception):
    """The run was deleted while the worker waited."""


def start_from_event(event: Mapping[str, Any]) -> float | None:
    """The start time in a watch event (``None`` while unset); errors raise.

    ``DELETED`` raises (the run is gone: no start will come); an ``ERROR`` event raises
    :class:`ValueError` with the server's message (the caller retries).
    """
    kind = event.get("type")
    obj = event.get("object") or {}
    if kind == "ERROR":
        raise ValueError(f"watch error: {obj.get('message') or obj}")
    if kind == "DELETED":
        raise _Gone("the run was deleted before it started")
    if kind not in ("ADDED", "MODIFIED"):
        return None  # BOOKMARK
    value = (obj.get("status") or {}).get(START_FIELD)
    if not value:
        return None
    return parse_time(str(value))


def parse_time(text: str) -> float:
    """An RFC 3339 time (``2026-11-30T06:00:00.123Z``) in Unix seconds."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{START_FIELD} {text!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{START_FIELD} {text!r} has no time zone")
    return moment.timestamp()


def in_cluster_server(environ: Mapping[str, str] | None = None) -> str | None:
    """``https://HOST:PORT`` of the API server from the pod's environment, or ``None``."""
    env = os.environ if environ is None else environ
    host, port = env.get(SERVICE_HOST_ENV), env.get(SERVICE_PORT_ENV)
    if not host or not port:
        return None
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def parse_run(text: str) -> tuple[str, str]:
    """``NAMESPACE/NAME`` as a pair; anything else raises :class:`ValueError`."""
    namespace, sep, name = text.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ValueError(f"expected NAMESPACE/NAME, got {text!r}")
    return namespace, name


def _read_token(path: str) -> str:
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise StartError(f"--api-token-file {path}: {exc.strerror or exc}") from None
    if not token:
        raise StartError(f"--api-token-file {path}: the file is empty")
    return token


def _tls(ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _refused(response: http.client.HTTPResponse) -> Exception:
    body = response.read(4096)
    try:
        message = json.loads(body).get("message") or ""
    except ValueError:
        message = body.decode(errors="replace").strip()[:200]
    if response.status == 404 and not message:
        message = "not found"
    return ValueError(f"HTTP {response.status} {response.reason}: {message}".strip())


def _why(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
