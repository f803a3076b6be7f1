"""Connection edge cases against a raw TCP server: keep-alive races, resets, bad responses."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from kuar_loadgen import LoadSpec, run

from .server import serve

pytestmark = pytest.mark.timeout(30)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@contextmanager
def raw_server(mode: str) -> Iterator[dict[str, int]]:
    """A TCP server on 127.0.0.1 that answers each request according to ``mode``."""
    stats = {"port": 0, "connections": 0, "requests": 0}
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    servers: list[asyncio.Server] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats["connections"] += 1
        served = 0
        try:
            while True:
                try:
                    await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                stats["requests"] += 1
                if mode == "close-after-first" and served >= 1:
                    return  # the keep-alive race: the server closes as the request arrives
                if mode == "reset":
                    return
                if mode == "garbage":
                    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
                    await writer.drain()
                    return
                if mode == "eof-body":
                    writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody to eof")
                    await writer.drain()
                    return
                writer.write(OK)
                await writer.drain()
                served += 1
        finally:
            writer.close()

    async def start() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        stats["port"] = server.sockets[0].getsockname()[1]
        servers.append(server)

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        servers[0].close()
        loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield stats
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _spec(port: int, **kw: object) -> LoadSpec:
    base: dict[str, object] = {"urls": (f"http://127.0.0.1:{port}/",), "rps": 100.0,
                               "duration": 1.0, "processes": 1, "timeout": 2.0}
    base.update(kw)
    return LoadSpec(**base)  # type: ignore[arg-type]


def test_a_request_lost_to_a_keep_alive_close_is_retried_once_on_a_new_connection() -> None:
    with raw_server("close-after-first") as srv:
        r = run(_spec(srv["port"], connections=1))
    assert (r.responses, r.errors) == (100, 0)
    # Every connection served one request and then dropped the next one, which was retried.
    assert srv["requests"] >= 199
    assert srv["connections"] >= 100


def test_a_server_that_resets_every_request_gives_reset_errors_without_endless_retries() -> None:
    with raw_server("reset") as srv:
        r = run(_spec(srv["port"], rps=50.0))
    assert r.responses == 0
    assert r.error_kinds == {"reset": 50}
    assert srv["requests"] == 50  # fresh connections: nothing to retry


def test_an_unparsable_response_is_a_protocol_error() -> None:
    with raw_server("garbage") as srv:
        r = run(_spec(srv["port"], rps=30.0))
    assert r.error_kinds == {"protocol": 30}


def test_a_response_delimited_by_the_end_of_the_connection_counts() -> None:
    with raw_server("eof-body") as srv:
        r = run(_spec(srv["port"], rps=30.0))
    assert (r.responses, r.errors) == (30, 0)
    assert r.status_codes == {"200": 30}


def test_several_urls_on_different_servers_share_the_rate_round_robin() -> None:
    with serve() as a, serve() as b:
        r = run(LoadSpec(urls=(f"http://127.0.0.1:{a.port}/a", f"http://127.0.0.1:{b.port}/b"),
                         rps=200.0, duration=1.0, processes=1))
    assert (r.responses, r.errors) == (200, 0)
    assert (dict(a.paths), dict(b.paths)) == ({"/a": 100}, {"/b": 100})
