"""The HTTP transport to the API server: a thin HTTP/1.1 client on asyncio and httptools.

Place in the pipeline: below every verb. ``kuar.client`` is the only package that talks HTTP
to the API server; everything else calls :class:`Client`. Why not aiohttp or httpx:
docs/decisions/0024-client-transport.md (client CPU per request and import memory).

Each connection is an :class:`asyncio.Protocol` whose responses are parsed by
``httptools.HttpResponseParser`` (llhttp, the C parser of Node.js). Connections are kept
alive in a pool of at most ``pool_size`` per :class:`Client`; one request at a time per
connection (no pipelining).

Guarantees:

- Every non-2xx answer becomes an :class:`~kuar.client.errors.ApiError` subclass carrying the
  decoded ``Status`` and ``Retry-After``; response bodies are decoded JSON.
- Connect failures, resets, truncated bodies, malformed responses and timeouts become
  :class:`~kuar.client.errors.TransportError` naming the method and path.
- ``timeout`` bounds the whole request (waiting for a connection included); ``None`` means
  unbounded (watches). Opening a connection is bounded at 10 s.
- A watch yields each decoded line whatever its length; its connection is closed when the
  consumer stops early or is cancelled, and reused only when the server ended the stream
  cleanly.
- A cancelled or failed request never returns its connection to the pool.
- Waiters for a connection are served first come, first served; idle connections close after
  30 s.
- A request that fails on a *reused* keep-alive connection before any response byte arrived
  is retried once on a fresh connection when Go's ``net/http`` would retry it
  (``persistConn.shouldRetryRequest``): nothing of it was written, or the method is
  idempotent (GET, HEAD, OPTIONS, TRACE). A PATCH that raced with the server's keep-alive
  close fails with :class:`TransportError` instead: it may have been applied.

Caveats: HTTP/1.1 only (no HTTP/2; a watch holds one connection for its whole life, so the
pool size bounds concurrent watches plus requests); no proxies (kubeconfig ``proxy-url`` was
never supported); no ``HEAD`` requests (the parser cannot be told a body is absent); no
``Expect: 100-continue``; no redirects (a 3xx is an ``ApiError``); responses are not asked to be
compressed (aiohttp asked for gzip).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, cast
from urllib.parse import quote, urlencode, urlsplit

import httptools

from kuar.client.config import ClientConfig, load_config
from kuar.client.errors import TransportError, error_from_status

Params = Mapping[str, str | int | bool | None]

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

CONNECT_TIMEOUT = 10.0
"""Seconds allowed to open a connection (TCP and TLS handshake)."""
IDLE_TIMEOUT = 30.0
"""Seconds an unused keep-alive connection stays open."""
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})  # Go's Request.isReplayable
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})
_STREAM_HIGH_WATER = 1 << 20  # a watch pauses reading above this many unconsumed bytes
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


def _query(params: Params | None) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        pairs.append((key, ("true" if value else "false") if isinstance(value, bool)
                      else str(value)))
    return urlencode(pairs, safe="/:@?") if pairs else ""


class _Broken(Exception):
    """The connection failed before a complete response; ``got_bytes`` says if any arrived."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; holds the state of the response in flight."""

    def __init__(self, pool: _Pool) -> None:
        self._pool = pool
        self._loop = pool.loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.idle_timer: asyncio.TimerHandle | None = None
        self._in_flight = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.retry_after: str | None = None
        self.headers_done = False
        self.complete = False
        self.keep_alive = True
        self.got_bytes = False
        self.error: BaseException | None = None
        self._framed = False  # Content-Length or Transfer-Encoding present
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._streaming = False
        self._wakeup: asyncio.Future[None] | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses but have its methods
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self._in_flight:  # bytes nobody asked for: the connection is unusable
            self.close()
            return
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(_Broken(f"malformed response: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        if self._in_flight and not self.complete:
            if exc is None and self.headers_done and not self._framed:
                self.complete = True  # a body delimited by the end of the connection
                self.keep_alive = False
                self._wake()
            else:
                reason = f"connection lost: {exc}" if exc else "server closed the connection"
                self._fail(_Broken(reason if not self.headers_done
                                   else f"{reason} (response truncated)"))
        self._pool.forget(self)

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"retry-after":
            self.retry_after = value.decode("latin-1")
        elif lower in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        if self.status in (204, 304):
            self._framed = True
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._streaming and self._buffered > _STREAM_HIGH_WATER and not self._paused:
            self._paused = True
            assert self._transport is not None
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # used by Client

    def send(self, data: bytes, streaming: bool) -> bool:
        """Start one exchange; ``False`` when the connection was already closed (nothing sent)."""
        self._reset()
        self._streaming = streaming
        self._in_flight = True
        if self.closed or self._transport is None or self._transport.is_closing():
            self._fail(_Broken("connection closed before the request was sent"))
            return False
        self._transport.write(data)
        return True

    def take(self) -> bytes:
        """The body bytes received so far (and not yet taken)."""
        data = b"".join(self._chunks) if len(self._chunks) != 1 else self._chunks[0]
        self._chunks.clear()
        self._buffered = 0
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return data

    async def wait(self) -> None:
        """Until something changes: headers, a body chunk, completion or an error."""
        if self.error is not None:
            raise self.error
        self._wakeup = self._loop.create_future()
        try:
            await self._wakeup
        finally:
            self._wakeup = None
        if self.error is not None:
            raise self.error

    async def read_headers(self) -> None:
        while not self.headers_done:
            await self.wait()

    async def read_body(self) -> bytes:
        while not self.complete:
            await self.wait()
        return self.take()

    def finish(self) -> None:
        """The exchange is over: the connection goes back to the pool when it can be reused."""
        self._in_flight = False
        if self.complete and self.keep_alive and not self.closed and not self._chunks:
            self.reused = True
            self._pool.release(self)
        else:
            self.close()

    def close(self) -> None:
        """Close the connection now (a cancelled or failed exchange is never reused)."""
        self._in_flight = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        elif self._transport is None and not self.closed:
            self.closed = True
            self._pool.forget(self)

    def abort(self) -> None:
        """Drop the connection without a TLS close_notify (used on shutdown)."""
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)


class _Pool:
    """At most ``size`` connections to one server; idle ones reused, waiters served FIFO."""

    def __init__(self, config: ClientConfig, size: int) -> None:
        self.loop = asyncio.get_running_loop()
        url = urlsplit(config.server)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise TransportError(f"unsupported server URL {config.server!r}")
        self.https = url.scheme == "https"
        self.host = url.hostname
        self.port = url.port or (443 if self.https else 80)
        self.netloc = url.netloc.rpartition("@")[2]
        self.prefix = url.path.rstrip("/")
        self.ssl: ssl.SSLContext | None = None
        self.server_name: str | None = None
        """Sent as SNI and checked against the certificate (the URL's host unless the config
        names another)."""
        if self.https:
            self.ssl = config.ssl_context or ssl.create_default_context()
            self.server_name = config.tls_server_name or self.host
        self.size = max(1, size)
        self._open = 0
        self._all: set[_Connection] = set()
        self._idle: list[_Connection] = []
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()

    async def acquire(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.idle_timer is not None:
                conn.idle_timer.cancel()
                conn.idle_timer = None
            if not conn.closed:
                return conn
        if self._open < self.size:
            self._open += 1
            return await self._connect()
        waiter: asyncio.Future[_Connection | None] = self.loop.create_future()
        self._waiters.append(waiter)
        try:
            handed = await waiter
        except BaseException:
            if waiter.cancelled():
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            else:  # woken and cancelled at once: pass what we were given on
                given = waiter.result()
                if given is None:
                    self._hand_slot()
                else:
                    self.release(given)
            raise
        if handed is not None:
            return handed
        return await self._connect()  # a slot was handed over: open a connection in it

    async def _connect(self) -> _Connection:
        """Open a connection in a slot already counted in ``_open``."""
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that
            # arrives as the connection completes (it returns the connection instead), and
            # a cancelled watch then runs on for its whole timeoutSeconds
            async with asyncio.timeout(CONNECT_TIMEOUT):
                _, conn = await self.loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self.ssl,
                    server_hostname=self.server_name,
                    ssl_handshake_timeout=CONNECT_TIMEOUT if self.https else None,
                )
        except TimeoutError:
            self._hand_slot()
            reason = f"connect to {self.netloc} timed out after {CONNECT_TIMEOUT:g} s"
            raise _Broken(reason) from None
        except BaseException:
            self._hand_slot()
            raise
        self._all.add(conn)
        return conn

    def release(self, conn: _Connection) -> None:
        """``conn`` finished a complete exchange and may be reused."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        conn.idle_timer = self.loop.call_later(IDLE_TIMEOUT, conn.close)
        self._idle.append(conn)

    def forget(self, conn: _Connection) -> None:
        """``conn`` closed: its slot goes to the first waiter, or back to the pool."""
        if conn not in self._all:
            return
        self._all.discard(conn)
        if conn in self._idle:
            self._idle.remove(conn)
        self._hand_slot()

    def _hand_slot(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves to the waiter; _open is unchanged
                return
        self._open -= 1

    def close(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(TransportError("client closed"))
        self._waiters.clear()
        for conn in list(self._all):
            conn.abort()


class Client:
    """An asynchronous client for one API server.

    Use as ``async with Client(config) as client`` or call :meth:`close`. Create it inside the
    event loop that will use it.
    """

    def __init__(self, config: ClientConfig, *, pool_size: int = 100) -> None:
        """Prepare a client; the connection pool opens lazily on the first request."""
        self.config = config
        self._pool_size = pool_size
        self._pool: _Pool | None = None
        self._head: str | None = None

    @classmethod
    async def from_kubeconfig(
        cls, kubeconfig: str | None = None, *, context: str | None = None
    ) -> Client:
        """Load configuration like kubectl does (see :func:`load_config`) and build a client."""
        return cls(await load_config(kubeconfig, context=context))

    @property
    def namespace(self) -> str:
        """The default namespace of the configuration's context."""
        return self.config.namespace

    def _get_pool(self) -> _Pool:
        if self._pool is None:
            self._pool = _Pool(self.config, self._pool_size)
            self._head = f"Host: {self._pool.netloc}\r\nUser-Agent: kuar\r\nAccept: {JSON}\r\n"
        return self._pool

    async def _encode(self, pool: _Pool, method: str, path: str, params: Params | None,
                      data: bytes | None, content_type: str | None) -> bytes:
        path, mark, given = path.partition("?")  # e.g. OpenAPI's serverRelativeURL ?hash=
        target = pool.prefix + quote(path, safe=_PATH_SAFE) + mark + given
        query = _query(params)
        if query:
            target += ("&" if mark else "?") + query
        head = [f"{method} {target} HTTP/1.1\r\n", self._head or ""]
        token = await self.config.token()
        if token:
            auth = token if token.startswith(("Bearer ", "Basic ")) else f"Bearer {token}"
            head.append(f"Authorization: {auth}\r\n")
        if content_type:
            head.append(f"Content-Type: {content_type}\r\n")
        if data is not None:
            head.append(f"Content-Length: {len(data)}\r\n")
        elif method not in _NO_BODY_METHODS:
            head.append("Content-Length: 0\r\n")
        head.append("\r\n")
        encoded = "".join(head).encode("latin-1")
        return encoded + data if data else encoded

    async def _exchange(self, method: str, message: bytes, streaming: bool) -> _Connection:
        """Send ``message`` and return the connection once the response headers are in.

        Retries once on a fresh connection by Go's rule (see the module docstring).
        """
        pool = self._get_pool()
        for attempt in (1, 2):
            conn = await pool.acquire()
            try:
                written = conn.send(message, streaming)
                await conn.read_headers()
            except _Broken:
                conn.close()
                if (attempt == 1 and conn.reused and not conn.got_bytes
                        and (not written or method in _IDEMPOTENT)):
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            return conn
        raise AssertionError("unreachable")  # pragma: no cover

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | None = 60.0,
    ) -> Any:
        """Send one request and return the decoded JSON body (``None`` for an empty body).

        ``body`` is JSON-encoded unless it is already ``str`` or ``bytes`` (used for apply
        patches in YAML). Raises :class:`ApiError` for non-2xx, :class:`TransportError` when the
        server cannot be reached, the connection breaks or ``timeout`` seconds pass.
        """
        data: bytes | None = None
        if body is not None:
            if isinstance(body, bytes):
                data = body
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = json.dumps(body, separators=(",", ":")).encode()
            content_type = content_type or JSON
        try:
            async with asyncio.timeout(timeout):
                pool = self._get_pool()
                message = await self._encode(pool, method, path, params, data, content_type)
                conn = await self._exchange(method, message, streaming=False)
                try:
                    raw = await conn.read_body()
                except BaseException:
                    conn.close()
                    raise
                status, retry_after = conn.status, conn.retry_after
                conn.finish()
        except TimeoutError as exc:
            raise TransportError(f"{method} {path}: timed out after {timeout} s") from exc
        except (_Broken, OSError, ssl.SSLError) as exc:
            raise TransportError(f"{method} {path}: {exc or type(exc).__name__}") from exc
        return _decode(status, raw, retry_after)

    async def stream(
        self, path: str, *, params: Params | None = None, timeout: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """GET a line-delimited JSON stream (a watch) and yield each decoded line.

        ``timeout`` bounds the whole stream; the server's ``timeoutSeconds`` normally ends it
        first. Raises :class:`ApiError` when the server refuses the stream and
        :class:`TransportError` when the connection breaks.
        """
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        conn: _Connection | None = None
        try:
            async with asyncio.timeout_at(deadline):
                pool = self._get_pool()
                message = await self._encode(pool, "GET", path, params, None, None)
                conn = await self._exchange("GET", message, streaming=True)
                if conn.status >= 300:
                    raw = await conn.read_body()
                    failed, conn = conn, None
                    failed.finish()
                    _decode(failed.status, raw, failed.retry_after)
            assert conn is not None
            buffer = bytearray()
            scanned = 0
            while True:
                async with asyncio.timeout_at(deadline):
                    while not conn._chunks and not conn.complete:
                        await conn.wait()
                buffer += conn.take()
                while True:
                    newline = buffer.find(b"\n", scanned)
                    if newline < 0:
                        scanned = len(buffer)
                        break
                    line = bytes(buffer[:newline])
                    del buffer[:newline + 1]
                    scanned = 0
                    if line.strip():
                        yield json.loads(line)
                if conn.complete and not conn._chunks:
                    break
            if buffer.strip():
                yield json.loads(buffer)
            conn.finish()
            conn = None
        except TimeoutError as exc:
            raise TransportError(f"watch {path}: timed out after {timeout} s") from exc
        except (_Broken, OSError, ssl.SSLError) as exc:
            raise TransportError(f"watch {path}: {exc or type(exc).__name__}") from exc
        finally:
            if conn is not None:  # the consumer stopped early, was cancelled, or it failed
                conn.close()

    async def close(self) -> None:
        """Close the connection pool (a later request opens a new one)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
            await asyncio.sleep(0)  # let the transports' connection_lost run

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _decode(status: int, raw: bytes, retry_after: str | None) -> Any:
    """The decoded JSON body; raises the matching :class:`ApiError` for a non-2xx status."""
    decoded: Any = None
    if raw:
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
    if status >= 300:
        text = raw.decode(errors="replace").strip()[:500]
        raise error_from_status(status, decoded, retry_after=retry_after, fallback=text)
    return decoded
