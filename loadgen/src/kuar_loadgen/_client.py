"""A small, fast HTTP/1.1 client for open-loop load: keep-alive pools of raw asyncio protocols.

Place in the pipeline: the scheduler loop of :mod:`kuar_loadgen.worker` calls
:meth:`Pool.submit` at each request's due time; responses are parsed by ``httptools`` (the
llhttp parser of Node.js, also used by uvicorn) and reported to the
:class:`~kuar_loadgen.recorder.Recorder`. Why not aiohttp: docs/decisions (measured several
times slower per request, and its session API cannot keep a request's due time while it waits
for a connection).

Guarantees:

- One request at a time per connection (keep-alive, no pipelining), so a slow response never
  delays another request's bytes behind it.
- A request keeps its due time while it waits for a free connection or for a connection to
  open; latency and timeouts count from that due time.
- A request waits for a connection at most half its timeout (:data:`MAX_WAIT`); one still
  waiting then is not sent: it ends as ``dropped``, like k6's ``dropped_iterations``. Sent that
  late it would most likely time out in flight, and a timeout in flight closes its connection
  (HTTP/1.1 cannot cancel a request otherwise). So past its capacity (a server too slow for
  the pool's connections, or the generator's own core full) a pool keeps delivering its
  capacity, with the surplus counted, instead of collapsing into timeouts and reconnections;
  short stalls (under half the timeout) still show whole in the latency.
- Every submitted request ends exactly once: a response, or an error of one kind.

Caveats:

- A request sent on a reused connection that the server closes before any response byte is
  retried once on another connection (the server's keep-alive close raced with it, as
  browsers and urllib3 assume); its due time is kept.
- Timeouts are found by a sweep every ``timeout / 10`` s (at most 100 ms), so a timeout fires
  up to one sweep late; this avoids a timer per request.
- Only ``GET`` without a body; responses delimited by end-of-connection are accepted when the
  connection ends cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Callable
from time import monotonic
from typing import Any

import httptools

from kuar_loadgen.recorder import Recorder
from kuar_loadgen.spec import LoadSpec, Target

USER_AGENT = "kuar-loadgen/1"

MAX_WAIT = 0.5
"""The longest a request waits for a connection, as a fraction of its timeout; then it is
dropped (never sent)."""


def request_bytes(target: Target, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """The wire form of the ``GET`` request for a target (built once, sent many times).

    Pure ASCII: the spec refused control characters and non-ASCII headers, and
    :meth:`~kuar_loadgen.spec.LoadSpec.targets` percent-encoded non-ASCII paths.
    """
    lines = [f"GET {target.path} HTTP/1.1", f"Host: {target.host_header}",
             f"User-Agent: {USER_AGENT}", "Accept: */*"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def ssl_context(spec: LoadSpec) -> ssl.SSLContext:
    """TLS settings for HTTPS targets: the system store, ``ca_file``, or no checks."""
    ctx = ssl.create_default_context(cafile=spec.ca_file)
    if spec.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Request:
    """One scheduled request: its due time and its bytes."""

    __slots__ = ("data", "due", "retried")

    def __init__(self, due: float, data: bytes) -> None:
        self.due = due
        self.data = data
        self.retried = False


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying at most one request at a time."""

    __slots__ = ("got_bytes", "parser", "pool", "recorder", "req", "served", "status",
                 "transport")

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.recorder = pool.recorder
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.req: Request | None = None
        self.served = 0
        self.status = 0
        self.got_bytes = False

    # -- asyncio callbacks ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.pool.connected(self)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.fail("protocol")

    def connection_lost(self, exc: Exception | None) -> None:
        req, self.req = self.req, None
        pool = self.pool
        pool.lost(self)
        if req is not None:
            now = monotonic()
            if self.status and exc is None:
                # A response delimited by the end of the connection.
                pool.recorder.response(req.due, now, self.status)
            elif not self.got_bytes and self.served and not req.retried:
                req.retried = True
                pool.pending.appendleft(req)
            else:
                pool.recorder.error(now, "tls" if isinstance(exc, ssl.SSLError) else "reset")
        pool.pump()

    # -- httptools callbacks --------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_message_complete(self) -> None:
        req, self.req = self.req, None
        if req is None:  # an unsolicited response: the server is confused
            self.fail("protocol")
            return
        pool = self.pool
        self.recorder.response(req.due, monotonic(), self.status)
        self.served += 1
        self.status = 0
        if self.parser.should_keep_alive():
            pool.release(self)
        elif self.transport is not None:
            self.transport.close()

    # -- used by the pool -----------------------------------------------------------------

    def send(self, req: Request) -> None:
        """Write a request; the connection must be idle."""
        self.req = req
        self.got_bytes = False
        if not req.retried:  # a retry is the same request: count it and its lateness once
            self.recorder.sent_late(req.due, monotonic())
        self.transport.write(req.data)  # type: ignore[union-attr]

    def fail(self, kind: str) -> None:
        """End the current request with an error and drop the connection."""
        req, self.req = self.req, None
        if req is not None:
            self.pool.recorder.error(monotonic(), kind)
        if self.transport is not None:
            self.transport.abort()


class Pool:
    """Connections to one origin; requests wait here, in due order, for a free connection."""

    def __init__(self, *, loop: asyncio.AbstractEventLoop, target: Target,
                 ssl: ssl.SSLContext | None, max_connections: int, timeout: float,
                 recorder: Recorder) -> None:
        self.loop = loop
        self.target = target
        self.ssl = ssl
        self.max = max_connections
        self.timeout = timeout
        self.max_wait = timeout * MAX_WAIT
        self.recorder = recorder
        self.idle: list[Connection] = []
        self.conns: set[Connection] = set()
        self.pending: deque[Request] = deque()
        self.open = 0
        self.connecting = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.on_idle: Callable[[], None] | None = None
        """Called when a connection has come free and no request waits: the scheduler issues
        what is already due (:meth:`kuar_loadgen.worker._Worker.issue_due`)."""

    def submit(self, req: Request) -> None:
        """Send now if a connection is idle, else queue (keeping the due time)."""
        if self.idle and not self.pending:
            self.idle.pop().send(req)
        else:
            self.pending.append(req)
            self.pump()

    def pump(self) -> None:
        """Hand queued requests to idle connections; open connections for the rest."""
        idle, pending = self.idle, self.pending
        while pending and idle:
            req = self._next()
            if req is None:
                break
            idle.pop().send(req)
        while len(pending) > self.connecting and self.open < self.max:
            self._open_one()

    def warm(self, n: int) -> None:
        """Start opening ``n`` connections ahead of the first request (bounded by the pool)."""
        for _ in range(min(n, self.max) - self.open):
            self._open_one()

    def _open_one(self) -> None:
        self.open += 1
        self.connecting += 1
        task = self.loop.create_task(self._connect())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def release(self, conn: Connection) -> None:
        """A connection finished its request and stays open."""
        req = self._next() if self.pending else None
        if req is not None:
            conn.send(req)
        else:
            self.idle.append(conn)
            if self.on_idle is not None:
                self.on_idle()

    def _next(self) -> Request | None:
        """The oldest waiting request that has not waited too long; older ones are dropped."""
        pending = self.pending
        now = monotonic()
        if pending[0].due < now - self.max_wait:
            self._drop_stale(now, now - self.max_wait)
            if not pending:
                return None
        return pending.popleft()

    def _drop_stale(self, now: float, before: float) -> None:
        pending, rec = self.pending, self.recorder
        while pending and pending[0].due < before:
            pending.popleft()
            rec.error(now, "dropped")

    def connected(self, conn: Connection) -> None:
        """A new connection is ready (TLS handshake done)."""
        self.connecting -= 1
        self.conns.add(conn)
        self.release(conn)

    def lost(self, conn: Connection) -> None:
        """A connection closed; forget it."""
        if conn in self.conns:
            self.conns.discard(conn)
            self.open -= 1
            with contextlib.suppress(ValueError):
                self.idle.remove(conn)

    def outstanding(self) -> int:
        """Requests queued or in flight."""
        return len(self.pending) + sum(1 for c in self.conns if c.req is not None)

    def sweep(self, now: float, *, expire_all: bool = False) -> None:
        """End requests that waited too long: dropped if never sent, timeout if in flight.

        A request is dropped after waiting half the timeout for a connection, and fails after
        the whole timeout in flight. ``expire_all`` ends every one (the run's end).
        """
        self._drop_stale(now, float("inf") if expire_all else now - self.max_wait)
        deadline = float("inf") if expire_all else now - self.timeout
        for conn in list(self.conns):
            req = conn.req
            if req is not None and req.due < deadline:
                conn.fail("timeout")

    def close(self) -> None:
        """Close every connection and cancel connection attempts."""
        for task in list(self.tasks):
            task.cancel()
        for conn in list(self.conns):
            if conn.transport is not None:
                conn.transport.close()

    async def _connect(self) -> None:
        t = self.target
        factory: Callable[[], Any] = lambda: Connection(self)  # noqa: E731
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation that
            # arrives as the connection completes (close() would then miss that connection).
            async with asyncio.timeout(self.timeout):
                await self.loop.create_connection(
                    factory, t.connect_host, t.connect_port, ssl=self.ssl,
                    server_hostname=t.host if self.ssl is not None else None)
        except asyncio.CancelledError:
            self.connecting -= 1
            self.open -= 1
            raise
        except Exception as e:  # OSError, TimeoutError, SSLError, or a resolver's ValueError
            self.connecting -= 1
            self.open -= 1
            if self.pending and not isinstance(e, TimeoutError):
                # The attempt was made for the oldest waiting request: it fails with it.
                self.pending.popleft()
                kind = "tls" if isinstance(e, ssl.SSLError) else "connect"
                self.recorder.error(monotonic(), kind)
            self.pump()
