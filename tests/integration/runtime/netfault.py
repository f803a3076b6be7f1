"""A TCP relay on 127.0.0.1 that can cut (partition) or stall (blackhole) the way to a server.

It sits between a client and the real kube-apiserver, so fault tests can break the network
while the API server and etcd stay real. TLS passes through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


class Relay:
    """Forwards connections to ``target`` until told to ``partition`` or ``blackhole``."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self.scheme = parts.scheme
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 443
        self.mode = "pass"  # pass | partition | blackhole
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"{self.scheme}://127.0.0.1:{port}"

    async def start(self) -> Relay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode == "partition":
            writer.transport.abort()
            return
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer)),
            asyncio.ensure_future(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        for w in (writer, up_writer):
            w.transport.abort()
            self._writers.discard(w)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                while self.mode == "blackhole":
                    await asyncio.sleep(0.05)  # hold the bytes: a silent, half-dead link
                writer.write(data)
                await writer.drain()

    def partition(self) -> None:
        """Drop every open connection and refuse new ones."""
        self.mode = "partition"
        for writer in list(self._writers):
            writer.transport.abort()

    def blackhole(self) -> None:
        """Keep connections open but deliver nothing (like a frozen peer)."""
        self.mode = "blackhole"

    def heal(self) -> None:
        """Forward again."""
        self.mode = "pass"

    async def close(self) -> None:
        self.partition()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
