"""A real HTTP(S) server on 127.0.0.1 for the load generator's tests, run in its own process.

Routes: ``/`` and any other path answer 200 ``ok``; ``/status/{code}`` answers that status;
``/sleep/{seconds}`` answers after a delay. :meth:`TestServer.stall` makes every request that
arrives in a wall-clock window wait until the window ends (a stalled server). ``/_control/``
paths (not counted) read the counters and set the stall.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import multiprocessing
import ssl
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class TestServer:
    """Client side of a server process: its port, its counters, and the stall control."""

    __test__ = False  # not a test class for pytest

    def __init__(self, port: int, *, tls: bool = False) -> None:
        self.port = port
        self.tls = tls
        self.final: Counter[str] | None = None
        """The counters read just before the server stopped (tests read them afterwards)."""

    def _control(self, what: str) -> Any:
        url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/_control/{what}"
        ctx = ssl._create_unverified_context() if self.tls else None
        with urllib.request.urlopen(url, timeout=10, context=ctx) as resp:
            return json.loads(resp.read())

    def stall(self, start: float, end: float) -> None:
        """Hold requests arriving between ``start`` and ``end`` (Unix time) until ``end``."""
        self._control(f"stall?start={start}&end={end}")

    @property
    def paths(self) -> Counter[str]:
        """Requests served so far, by path."""
        return self.final if self.final is not None else Counter(self._control("stats"))

    @property
    def total(self) -> int:
        return sum(self.paths.values())


class _Handler:
    def __init__(self) -> None:
        self.paths: Counter[str] = Counter()
        self.stall_window = (0.0, 0.0)

    async def handle(self, request: web.Request) -> web.Response:
        if request.path.startswith("/_control/"):
            if request.path == "/_control/stall":
                self.stall_window = (float(request.query["start"]), float(request.query["end"]))
                return web.json_response({})
            return web.json_response(dict(self.paths))
        self.paths[request.path] += 1
        start, end = self.stall_window
        now = time.time()
        if start <= now < end:
            await asyncio.sleep(end - now)
        parts = request.path.strip("/").split("/")
        if parts[0] == "status" and len(parts) == 2:
            return web.Response(status=int(parts[1]), text="status")
        if parts[0] == "sleep" and len(parts) == 2:
            await asyncio.sleep(float(parts[1]))
        return web.Response(text="ok")


def _serve_main(pipe: Connection, tls: tuple[str, str] | None) -> None:
    async def main() -> None:
        handler = _Handler()
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", handler.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        ctx = server_tls(Path(tls[0]), Path(tls[1])) if tls else None
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx, backlog=1024)
        await site.start()
        pipe.send(runner.addresses[0][1])
        await asyncio.Event().wait()  # until the parent terminates this process

    asyncio.run(main())


@contextmanager
def serve(tls: tuple[Path, Path] | None = None) -> Iterator[TestServer]:
    """Run an HTTP(S) server on 127.0.0.1 (an ephemeral port) in its own process.

    Its own process, so the load generator under test and the server never compete for one
    interpreter lock (in a thread, the server's latency would depend on the client's work).
    """
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve_main, daemon=True,
                       args=(child, (str(tls[0]), str(tls[1])) if tls else None))
    proc.start()
    try:
        assert parent.poll(30), "test server did not start"
        server = TestServer(int(parent.recv()), tls=tls is not None)
        yield server
        server.final = server.paths
    finally:
        proc.terminate()
        proc.join(10)


def self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (and 127.0.0.1): (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx
