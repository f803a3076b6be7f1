"""A real HTTP(S) server on 127.0.0.1 for the load generator's tests, run in a thread.

Routes: ``/`` and any other path answer 200 ``ok``; ``/status/{code}`` answers that status;
``/sleep/{seconds}`` answers after a delay. :meth:`TestServer.stall` makes every request that
arrives in a wall-clock window wait until the window ends (a stalled server).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class TestServer:
    __test__ = False  # not a test class for pytest

    def __init__(self) -> None:
        self.port = 0
        self.paths: Counter[str] = Counter()
        self.stall_window = (0.0, 0.0)

    def stall(self, start: float, end: float) -> None:
        """Hold requests arriving between ``start`` and ``end`` (Unix time) until ``end``."""
        self.stall_window = (start, end)

    @property
    def total(self) -> int:
        return sum(self.paths.values())

    async def handle(self, request: web.Request) -> web.Response:
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


@contextmanager
def serve(tls: ssl.SSLContext | None = None) -> Iterator[TestServer]:
    """Run a :class:`TestServer` on 127.0.0.1 (an ephemeral port) in a background thread."""
    server = TestServer()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner_box: list[web.AppRunner] = []

    async def start() -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", server.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls, backlog=1024)
        await site.start()
        server.port = runner.addresses[0][1]
        runner_box.append(runner)

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner_box[0].cleanup())
        loop.close()

    thread = threading.Thread(target=main, name="loadgen-test-server", daemon=True)
    thread.start()
    assert ready.wait(10), "test server did not start"
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


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
