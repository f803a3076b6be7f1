"""HTTP/1.1 edge cases of the client transport against scripted asyncio servers on loopback.

Only what a fake can provoke (odd byte splits, chunk extensions, keep-alive races, truncated
bodies, silent servers); behaviour against Kubernetes itself is covered by the integration
tests on the real control plane.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from kuar.client import Client, ClientConfig, TooManyRequests, TransportError

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter


@dataclass
class Request:
    """One request as the scripted server read it."""

    line: str
    headers: dict[str, str]
    body: bytes
    connection: int


@dataclass
class Script:
    """What a scripted server saw: connections opened, requests read, peak concurrency."""

    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    open_now: int = 0
    open_peak: int = 0
    closed_by_client: int = 0


Handler = Callable[[Request, Reader, Writer, Script], Awaitable[bool]]


async def read_request(reader: Reader, connection: int) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    line, *rest = head.decode("latin-1").split("\r\n")
    headers = {}
    for item in rest:
        if item:
            name, _, value = item.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(line, headers, body, connection)


def response(body: bytes | Mapping[str, object], status: str = "200 OK",
             extra: str = "") -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


@asynccontextmanager
async def scripted(handler: Handler, host: str = "127.0.0.1",
                   prefix: str = "", pool_size: int = 100
                   ) -> AsyncIterator[tuple[Client, Script]]:
    """A server that calls ``handler`` per request (``False`` closes the connection)."""
    script = Script()

    async def serve(reader: Reader, writer: Writer) -> None:
        script.connections += 1
        number = script.connections
        script.open_now += 1
        script.open_peak = max(script.open_peak, script.open_now)
        try:
            while True:
                request = await read_request(reader, number)
                if request is None:
                    script.closed_by_client += 1
                    break
                script.requests.append(request)
                if not await handler(request, reader, writer, script):
                    break
        except ConnectionError:
            script.closed_by_client += 1
        finally:
            script.open_now -= 1
            writer.close()

    server = await asyncio.start_server(serve, host, 0)
    port = server.sockets[0].getsockname()[1]
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    client = Client(ClientConfig(server=f"http://{netloc}{prefix}", ssl_context=None),
                    pool_size=pool_size)
    try:
        yield client, script
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


async def ok(request: Request, reader: Reader, writer: Writer, script: Script) -> bool:
    writer.write(response({"path": request.line.split()[1], "n": len(script.requests)}))
    await writer.drain()
    return True


async def test_response_split_at_odd_byte_boundaries() -> None:
    payload = {"items": [{"name": f"object-{i}", "value": "x" * 37} for i in range(40)]}

    async def dribble(request: Request, reader: Reader, writer: Writer, script: Script) -> bool:
        data = response(payload, extra="Retry-After: 1\r\n")
        sizes, at = (1, 3, 7, 2, 13, 5), 0
        for index in range(10_000):
            if at >= len(data):
                break
            size = sizes[index % len(sizes)] if index < 60 else 997
            writer.write(data[at:at + size])
            at += size
            await writer.drain()
            if index < 60:
                await asyncio.sleep(0.001)
        return True

    async with scripted(dribble) as (client, script):
        assert await client.request("GET", "/api/v1/x") == payload
        assert await client.request("GET", "/api/v1/x") == payload
        assert script.connections == 1  # the split response left the connection reusable


async def test_chunked_response_with_extensions_and_trailers() -> None:
    async def chunked(request: Request, reader: Reader, writer: Writer, script: Script) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5;name=value\r\n{\"a\":\r\n"
                     b"3;x;y=\"quoted\"\r\n 12\r\n"
                     b"1\r\n}\r\n"
                     b"0\r\nX-Trailer: done\r\n\r\n")
        await writer.drain()
        return True

    async with scripted(chunked) as (client, script):
        assert await client.request("GET", "/x") == {"a": 12}
        assert await client.request("GET", "/x") == {"a": 12}
        assert script.connections == 1


def close_second_request_on_first_connection() -> Handler:
    """Answers, but on connection 1's second request closes without a byte (keep-alive race)."""

    async def handler(request: Request, reader: Reader, writer: Writer, script: Script) -> bool:
        earlier = [r for r in script.requests[:-1] if r.connection == request.connection]
        if request.connection == 1 and earlier:
            return False
        return await ok(request, reader, writer, script)

    return handler


async def test_idempotent_request_is_retried_once_when_a_reused_connection_closes() -> None:
    async with scripted(close_second_request_on_first_connection()) as (client, script):
        await client.request("GET", "/first")
        answer = await client.request("GET", "/second")
        assert answer["path"] == "/second"
        assert [r.connection for r in script.requests] == [1, 1, 2]


async def test_non_idempotent_request_is_not_retried_after_it_was_written() -> None:
    async with scripted(close_second_request_on_first_connection()) as (client, script):
        await client.request("GET", "/first")
        with pytest.raises(TransportError, match="PATCH /status"):
            await client.request("PATCH", "/status", body={"status": {}},
                                 content_type="application/merge-patch+json")
        assert [r.line.split()[0] for r in script.requests] == ["GET", "PATCH"]
        # the broken connection left the pool: the next request opens a fresh one
        assert (await client.request("GET", "/third"))["path"] == "/third"
        assert script.requests[-1].connection == 2


async def test_connection_closed_by_server_while_idle_is_not_reused() -> None:
    async def answer_then_close(request: Request, reader: Reader, writer: Writer,
                                script: Script) -> bool:
        await ok(request, reader, writer, script)
        return False

    async with scripted(answer_then_close) as (client, script):
        await client.request("GET", "/first")
        await asyncio.sleep(0.05)  # the server's close reaches the idle connection
        body = await client.request("PATCH", "/p", body={}, content_type="application/json")
        assert body["path"] == "/p"
        assert [r.connection for r in script.requests] == [1, 2]


async def test_fresh_connection_failure_is_not_retried() -> None:
    async def hang_up(request: Request, reader: Reader, writer: Writer, script: Script) -> bool:
        return False

    async with scripted(hang_up) as (client, script):
        with pytest.raises(TransportError, match="GET /x: server closed the connection"):
            await client.request("GET", "/x")
        assert len(script.requests) == 1


async def test_connection_refused_is_a_transport_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = Client(ClientConfig(server=f"http://127.0.0.1:{port}", ssl_context=None))
    try:
        with pytest.raises(TransportError, match="DELETE /api/v1/x"):
            await client.request("DELETE", "/api/v1/x")
    finally:
        await client.close()


async def test_truncated_body_is_a_transport_error_and_the_pool_recovers() -> None:
    async def truncate(request: Request, reader: Reader, writer: Writer, script: Script) -> bool:
        if len(script.requests) == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial\":")
            await writer.drain()
            return False
        return await ok(request, reader, writer, script)

    async with scripted(truncate) as (client, _):
        with pytest.raises(TransportError, match=r"GET /x: .*truncated"):
            await client.request("GET", "/x")
        assert (await client.request("GET", "/y"))["path"] == "/y"


class TestWatch:
    """A watch of one 1 MiB line then a small one, split across chunks, ended by the server."""

    BIG = {"type": "ADDED", "object": {"data": "z" * (1 << 20)}}
    SMALL = {"type": "MODIFIED", "object": {"n": 1}}

    @staticmethod
    async def big_then_end(request: Request, reader: Reader, writer: Writer,
                           script: Script) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        data = (json.dumps(TestWatch.BIG).encode() + b"\n"
                + json.dumps(TestWatch.SMALL).encode() + b"\n")
        for at in range(0, len(data), 65_521):
            piece = data[at:at + 65_521]
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async def test_watch_yields_a_one_mebibyte_line_split_across_chunks(self) -> None:
        async with scripted(self.big_then_end) as (client, script):
            events = [event async for event in client.stream("/api/v1/configmaps",
                                                               params={"watch": True})]
            assert events == [self.BIG, self.SMALL]
            assert script.requests[0].line.split()[1] == "/api/v1/configmaps?watch=true"
            await client.request("GET", "/after")
            assert script.connections == 1  # the cleanly ended watch returned its connection


async def test_slow_server_hits_the_timeout_and_the_connection_is_closed() -> None:
    async def silent(request: Request, reader: Reader, writer: Writer, script: Script) -> bool:
        await reader.read()  # until the client gives up and closes
        return False

    async with scripted(silent) as (client, script):
        with pytest.raises(TransportError, match=r"GET /slow: timed out after 0.2 s"):
            await client.request("GET", "/slow", timeout=0.2)
        await asyncio.sleep(0.05)
        assert script.open_now == 0


async def test_cancelled_request_does_not_return_its_connection() -> None:
    started = asyncio.Event()

    async def half(request: Request, reader: Reader, writer: Writer, script: Script) -> bool:
        if len(script.requests) == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"a\":")
            await writer.drain()
            started.set()
            await reader.read()
            return False
        return await ok(request, reader, writer, script)

    async with scripted(half) as (client, script):
        task = asyncio.create_task(client.request("GET", "/half"))
        await started.wait()
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await client.request("GET", "/next"))["path"] == "/next"
        assert [r.connection for r in script.requests] == [1, 2]


async def test_a_cancel_as_the_connection_completes_is_not_lost(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The race that kept a leader election's cancelled Lease watch running for a minute:
    Python 3.11's wait_for returned the new connection and dropped the cancellation."""
    async with scripted(ok) as (client, script):
        loop = asyncio.get_running_loop()
        real = loop.create_connection

        async def connect_then_cancelled(*args: Any, **kwargs: Any) -> Any:
            made = await real(*args, **kwargs)
            task.cancel()  # the caller is cancelled just as its connection is made
            return made

        monkeypatch.setattr(loop, "create_connection", connect_then_cancelled)
        task = asyncio.create_task(client.request("GET", "/cancelled"))
        with pytest.raises(asyncio.CancelledError):
            await task
        monkeypatch.undo()
        assert (await client.request("GET", "/next"))["path"] == "/next"
        assert [r.line.split()[1] for r in script.requests][-1] == "/next"


async def test_watch_consumer_stopping_early_closes_the_connection() -> None:
    async def endless(request: Request, reader: Reader, writer: Writer, script: Script) -> bool:
        if len(script.requests) > 1:
            return await ok(request, reader, writer, script)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        line = b'{"type":"ADDED","object":{}}\n'
        writer.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
        await writer.drain()
        await reader.read()  # returns once the client closed the connection
        script.closed_by_client += 1
        return False

    async with scripted(endless) as (client, script):
        stream = cast(AsyncGenerator[dict[str, Any], None], client.stream("/w"))
        assert await anext(stream) == {"type": "ADDED", "object": {}}
        await stream.aclose()
        await client.request("GET", "/next")
        assert [r.connection for r in script.requests] == [1, 2]
        await asyncio.sleep(0.05)
        assert script.closed_by_client == 1


async def test_429_carries_status_and_retry_after() -> None:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
              "message": "too many requests, please try again later", "reason": "TooManyRequests",
              "code": 429}

    async def busy(request: Request, reader: Reader, writer: Writer, script: Script) -> bool:
        writer.write(response(status, "429 Too Many Requests", "Retry-After: 3\r\n"))
        await writer.drain()
        return True

    async with scripted(busy) as (client, script):
        with pytest.raises(TooManyRequests) as caught:
            await client.request("POST", "/api/v1/namespaces/ns/configmaps", body={"a": 1})
        assert caught.value.retry_after == 3.0
        assert caught.value.status == status
        with pytest.raises(TooManyRequests):
            [event async for event in client.stream("/w")]
        assert script.connections == 1


async def test_pool_exhaustion_queues_requests_first_come_first_served() -> None:
    async def slow(request: Request, reader: Reader, writer: Writer, script: Script) -> bool:
        await asyncio.sleep(0.03)
        return await ok(request, reader, writer, script)

    async with scripted(slow, pool_size=2) as (client, script):
        paths = [f"/r{i}" for i in range(8)]
        answers = await asyncio.gather(*(client.request("GET", p) for p in paths))
        assert [a["path"] for a in answers] == paths
        assert script.open_peak == 2 and script.connections == 2
        assert [r.line.split()[1] for r in script.requests] == paths


async def test_path_prefix_query_encoding_and_ipv6_literal() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    async with scripted(ok, host="::1", prefix="/k8s/") as (client, script):
        await client.request("GET", "/api/v1/pods", params={
            "labelSelector": "app in (a,b),tier=web", "limit": 5, "watch": False,
            "continue": None})
        request = script.requests[0]
        assert request.line == ("GET /k8s/api/v1/pods?labelSelector=app+in+%28a%2Cb%29%2C"
                                "tier%3Dweb&limit=5&watch=false HTTP/1.1")
        assert request.headers["host"].startswith("[::1]:")


async def test_a_path_with_its_own_query_keeps_it_and_gains_the_params() -> None:
    async with scripted(ok) as (client, script):
        await client.request("GET", "/openapi/v3/apis/apps/v1?hash=AB12", params={"x": "a b"})
        await client.request("GET", "/api/v1/namespaces/ns/configmaps/name with space")
        assert [r.line.split()[1] for r in script.requests] == [
            "/openapi/v3/apis/apps/v1?hash=AB12&x=a+b",
            "/api/v1/namespaces/ns/configmaps/name%20with%20space"]


def test_the_transport_runs_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")  # kuar's runtime uses it when installed

    async def exercise() -> None:
        async def both(request: Request, reader: Reader, writer: Writer,
                       script: Script) -> bool:
            if request.line.startswith("GET /w"):
                return await TestWatch.big_then_end(request, reader, writer, script)
            return await ok(request, reader, writer, script)

        async with scripted(both) as (client, script):
            assert (await client.request("GET", "/a"))["path"] == "/a"
            assert [e async for e in client.stream("/w")] == [TestWatch.BIG, TestWatch.SMALL]
            assert script.connections == 1

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(exercise())


async def test_a_malformed_response_is_a_transport_error() -> None:
    async def garbage(request: Request, reader: Reader, writer: Writer, script: Script) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n{}")
        await writer.drain()
        return True

    async with scripted(garbage) as (client, _):
        with pytest.raises(TransportError, match="GET /x: malformed response"):
            await client.request("GET", "/x")
