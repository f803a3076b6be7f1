"""The HTTP transport to the API server: one pooled aiohttp session per :class:`Client`.

Place in the pipeline: below every verb. ``kuar.client`` is the only package that talks HTTP
to the API server; everything else calls :class:`Client`.

Guarantees: every non-2xx answer becomes an :class:`~kuar.client.errors.ApiError` subclass;
connection failures become :class:`~kuar.client.errors.TransportError`; response bodies are
decoded JSON. Connections are kept alive and reused (HTTP/1.1). Caveat: a watch holds one
connection for its whole life, so the pool size bounds concurrent watches plus requests.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any

import aiohttp

from kuar.client.config import ClientConfig, load_config
from kuar.client.errors import TransportError, error_from_status

Params = Mapping[str, str | int | bool | None]

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def _query(params: Params | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


class Client:
    """An asynchronous client for one API server.

    Use as ``async with Client(config) as client`` or call :meth:`close`. Create it inside the
    event loop that will use it.
    """

    def __init__(self, config: ClientConfig, *, pool_size: int = 100) -> None:
        """Prepare a client; the connection pool opens lazily on the first request."""
        self.config = config
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

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

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                ssl=self.config.ssl_context if self.config.ssl_context is not None else False,
                limit=self._pool_size,
                keepalive_timeout=30,
            )
            self._session = aiohttp.ClientSession(
                base_url=self.config.server,
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                json_serialize=lambda o: json.dumps(o, separators=(",", ":")),
            )
        return self._session

    async def _headers(self, content_type: str | None, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        token = await self.config.token()
        if token:
            headers["Authorization"] = (token if token.startswith(("Bearer ", "Basic "))
                                        else f"Bearer {token}")
        return headers

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
        server cannot be reached or the connection breaks.
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
        headers = await self._headers(content_type, JSON)
        session = self._get_session()
        try:
            async with session.request(
                method,
                path,
                params=_query(params),
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=10),
            ) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"{method} {path}: {exc or type(exc).__name__}") from exc
        decoded: Any = None
        if raw:
            try:
                decoded = json.loads(raw)
            except ValueError:
                decoded = None
        if status >= 400:
            text = raw.decode(errors="replace").strip()[:500]
            raise error_from_status(status, decoded, retry_after=retry_after, fallback=text)
        return decoded

    async def stream(
        self, path: str, *, params: Params | None = None, timeout: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """GET a line-delimited JSON stream (a watch) and yield each decoded line.

        ``timeout`` bounds the whole stream; the server's ``timeoutSeconds`` normally ends it
        first. Raises :class:`ApiError` when the server refuses the stream and
        :class:`TransportError` when the connection breaks.
        """
        headers = await self._headers(None, JSON)
        session = self._get_session()
        try:
            async with session.get(
                path,
                params=_query(params),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=10),
            ) as resp:
                if resp.status >= 400:
                    raw = await resp.read()
                    try:
                        decoded = json.loads(raw)
                    except ValueError:
                        decoded = None
                    raise error_from_status(
                        resp.status, decoded, retry_after=resp.headers.get("Retry-After"),
                        fallback=raw.decode(errors="replace")[:500],
                    )
                # A watch line can be far larger than aiohttp's default 64 KiB line limit, so
                # split on newlines ourselves.
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    while True:
                        newline = buffer.find(b"\n")
                        if newline < 0:
                            break
                        line, buffer = buffer[:newline], buffer[newline + 1 :]
                        if line.strip():
                            yield json.loads(line)
                if buffer.strip():
                    yield json.loads(buffer)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"watch {path}: {exc or type(exc).__name__}") from exc

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
