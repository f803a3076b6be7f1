"""The HTTPS server: routing, JSON errors for bad input (fuzzed), TLS 1.2+, reload, stop."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kuar.webhook import (
    RAW,
    Admission,
    CertificateAuthority,
    ConversionWebhook,
    ServingCertificate,
    ValidatingWebhook,
    Validator,
    WebhookServer,
    WebhookServerSettings,
    issue_serving_certificate,
)
from kuar.webhook.admission import AdmissionRule
from kuar_loadtest.api.conversion import LOADTEST_CONVERSION
from tests.unit.webhook.conftest import admission_review, client_context, loadtest, loadtest_v1

RULE = AdmissionRule(api_groups=("beta.kuar.com",), api_versions=("v1",), resources=("loadtests",))


class NoFtp(Validator[dict[str, Any]]):
    def validate_create(self, obj: dict[str, Any], admission: Admission[Any]) -> None:
        from kuar.webhook import FieldErrors

        errors = FieldErrors()
        if obj["spec"].get("scheme") == "ftp":
            errors.not_supported("spec.scheme", "ftp", ["http", "https"])
        errors.raise_if_any()


SETTINGS = WebhookServerSettings(host="127.0.0.1", port=0, max_body_bytes=64 * 1024,
                                 body_timeout=1.0, handshake_timeout=1.0)


@pytest.fixture
async def server(serving: ServingCertificate) -> AsyncIterator[WebhookServer]:
    hook = ValidatingWebhook(name="v.kuar.com", path="/validate", rules=(RULE,), codec=RAW,
                             validator=NoFtp())
    srv = WebhookServer(webhooks=[hook], conversions=[ConversionWebhook(
        converters=[LOADTEST_CONVERSION])], certificates=serving, settings=SETTINGS)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def http(serving: ServingCertificate) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(ssl=client_context(serving.ca_pem))
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, data: bytes,
               content_type: str = "application/json") -> tuple[int, Any]:
    async with http.post(url, data=data, headers={"Content-Type": content_type}) as resp:
        assert resp.content_type == "application/json"
        return resp.status, await resp.json()


async def test_admission_review_round_trip_over_https(
    server: WebhookServer, http: aiohttp.ClientSession
) -> None:
    review = admission_review(loadtest_v1(scheme="ftp"), uid="abc")
    status, answer = await post(http, server.url + "/validate", json.dumps(review).encode())
    assert status == 200
    assert answer["response"]["uid"] == "abc"
    assert answer["response"]["allowed"] is False
    assert "spec.scheme" in answer["response"]["status"]["message"]


async def test_conversion_review_round_trip_over_https(
    server: WebhookServer, http: aiohttp.ClientSession
) -> None:
    review = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
              "request": {"uid": "c1", "desiredAPIVersion": "beta.kuar.com/v2",
                          "objects": [loadtest_v1()]}}
    status, answer = await post(http, server.url + "/convert", json.dumps(review).encode())
    assert status == 200
    assert answer["response"]["uid"] == "c1"
    assert answer["response"]["result"] == {"status": "Success"}
    [obj] = answer["response"]["convertedObjects"]
    assert obj["apiVersion"] == "beta.kuar.com/v2"
    assert obj["spec"]["target"]["service"] == "my-service"


@pytest.mark.parametrize(("data", "code", "words"), [
    (b"{not json", 400, "not valid JSON"),
    (b"[]", 400, "JSON object"),
    (json.dumps({"apiVersion": "v1", "kind": "Pod"}).encode(), 400, "AdmissionReview"),
    (json.dumps({**admission_review(loadtest()), "kind": "ConversionReview"}).encode(), 400,
     "AdmissionReview"),
    (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                 "request": {"operation": "CREATE", "kind": {"kind": "X"}}}).encode(), 400,
     "uid"),
    (json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                 "request": {"uid": "x"}}).encode(), 400, "admission.k8s.io/v1"),
    (b"x" * (65 * 1024), 413, "limit"),
])
async def test_bad_bodies_get_a_4xx_json_status(
    server: WebhookServer, http: aiohttp.ClientSession, data: bytes, code: int, words: str
) -> None:
    status, answer = await post(http, server.url + "/validate", data)
    assert status == code
    assert answer["kind"] == "Status"
    assert answer["code"] == code
    assert words in answer["message"]


async def test_wrong_content_type_path_and_method_get_json_errors(
    server: WebhookServer, http: aiohttp.ClientSession
) -> None:
    status, answer = await post(http, server.url + "/validate", b"{}", "text/plain")
    assert (status, answer["code"]) == (415, 415)
    status, answer = await post(http, server.url + "/nowhere", b"{}")
    assert (status, answer["code"]) == (404, 404)
    async with http.get(server.url + "/validate") as resp:
        assert resp.status == 405
        assert (await resp.json())["code"] == 405
    async with http.get(server.url + "/healthz") as resp:
        assert resp.status == 200


async def test_chunked_oversized_body_is_refused_with_413(
    server: WebhookServer, http: aiohttp.ClientSession
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 1024

    async with http.post(server.url + "/validate", data=chunks(),
                         headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 413
        assert (await resp.json())["code"] == 413


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
request_like = st.fixed_dictionaries(
    {}, optional={"uid": json_values | st.text(max_size=8), "operation": json_values,
                  "kind": json_values, "resource": json_values, "object": json_values,
                  "oldObject": json_values, "userInfo": json_values, "dryRun": json_values},
)
reviews = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda r, v: json.dumps({"apiVersion": "admission.k8s.io/v1",
                                       "kind": "AdmissionReview", "request": r,
                                       "extra": v}).encode(), request_like, json_values),
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=reviews)
async def test_fuzzed_bodies_never_crash_or_hang(
    server: WebhookServer, http: aiohttp.ClientSession, data: bytes
) -> None:
    async with asyncio.timeout(5):
        for path in ("/validate", "/convert"):
            status, answer = await post(http, server.url + path, data)
            assert status in (200, 400), answer
            if status == 400:
                assert answer["kind"] == "Status" and answer["message"]
            else:
                assert "response" in answer
    async with http.get(server.url + "/healthz") as resp:
        assert resp.status == 200


def _raw_exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(payload)
        chunks = b""
        try:
            while chunk := sock.recv(4096):
                chunks += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return chunks


async def test_plain_http_is_refused(server: WebhookServer) -> None:
    request = (b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 2\r\n\r\n{}")
    answer = await asyncio.to_thread(_raw_exchange, server.port, request)
    assert b"HTTP/1.1" not in answer  # no HTTP answer at all: the TLS layer closed it


def _handshake(port: int, version: ssl.TLSVersion, ca_pem: bytes) -> str:
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer old versions at all
    ctx.minimum_version = version
    ctx.maximum_version = version
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock, \
            ctx.wrap_socket(sock, server_hostname="localhost") as tls:
        return str(tls.version())


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
async def test_tls_below_1_2_is_refused(
    server: WebhookServer, serving: ServingCertificate, version: ssl.TLSVersion
) -> None:
    with pytest.raises(ssl.SSLError):
        await asyncio.to_thread(_handshake, server.port, version, serving.ca_pem)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_tls_1_2_and_1_3_are_accepted(
    server: WebhookServer, serving: ServingCertificate, version: ssl.TLSVersion
) -> None:
    got = await asyncio.to_thread(_handshake, server.port, version, serving.ca_pem)
    assert got == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]


async def test_silent_client_is_dropped_after_the_handshake_timeout(
    server: WebhookServer,
) -> None:
    def silent() -> float:
        import time
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            started = time.monotonic()
            assert sock.recv(10) == b""  # closed by the server
            return time.monotonic() - started

    assert await asyncio.to_thread(silent) < 4


def _peer_fingerprint(port: int, ca_pem: bytes) -> str:
    import hashlib

    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock, \
            ctx.wrap_socket(sock, server_hostname="localhost") as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return hashlib.sha256(der).hexdigest()


async def test_reload_serves_the_new_certificate_to_new_connections(
    server: WebhookServer, serving: ServingCertificate, ca: CertificateAuthority,
    http: aiohttp.ClientSession,
) -> None:
    # a kept-alive connection opened before the reload keeps working after it
    review = json.dumps(admission_review(loadtest())).encode()
    assert (await post(http, server.url + "/validate", review))[0] == 200
    before = await asyncio.to_thread(_peer_fingerprint, server.port, ca.cert_pem)
    assert before == serving.fingerprint
    fresh = issue_serving_certificate(ca, ["localhost"], ["127.0.0.1"])
    server.reload(fresh)
    after = await asyncio.to_thread(_peer_fingerprint, server.port, ca.cert_pem)
    assert after == fresh.fingerprint != before
    assert (await post(http, server.url + "/validate", review))[0] == 200


async def test_reload_with_a_mismatched_pair_keeps_the_old_one(
    server: WebhookServer, serving: ServingCertificate, ca: CertificateAuthority
) -> None:
    from kuar.webhook import CertificateError

    other = issue_serving_certificate(ca, ["localhost"], ["127.0.0.1"])
    broken = ServingCertificate(cert_pem=other.cert_pem, key_pem=serving.key_pem,
                                ca_pem=serving.ca_pem)
    with pytest.raises(CertificateError) as info:
        server.reload(broken)
    assert "PRIVATE KEY" not in str(info.value)
    assert "key_pem" not in repr(broken)
    assert await asyncio.to_thread(_peer_fingerprint, server.port, ca.cert_pem) == \
        serving.fingerprint


async def test_stop_waits_for_requests_in_flight(serving: ServingCertificate) -> None:
    class Slowish(Validator[dict[str, Any]]):
        async def validate_create(self, obj: dict[str, Any], admission: Admission[Any]) -> None:
            await asyncio.sleep(0.3)

    hook = ValidatingWebhook(name="v.kuar.com", path="/validate", rules=(RULE,), codec=RAW,
                             validator=Slowish())
    srv = WebhookServer(webhooks=[hook], certificates=serving, settings=SETTINGS)
    await srv.start()
    assert srv.ready.is_set()
    connector = aiohttp.TCPConnector(ssl=client_context(serving.ca_pem))
    async with aiohttp.ClientSession(connector=connector) as http:
        pending = asyncio.create_task(post(http, srv.url + "/validate",
                                           json.dumps(admission_review(loadtest())).encode()))
        await asyncio.sleep(0.1)
        await srv.stop()
        status, answer = await pending
    assert status == 200 and answer["response"]["allowed"] is True
    assert not srv.ready.is_set()


async def test_start_failure_leaves_nothing_running(serving: ServingCertificate) -> None:
    from kuar.webhook import CertificateManager

    class Fixed:
        poll_interval = None

        async def fetch(self) -> ServingCertificate:
            return serving

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        manager = CertificateManager(Fixed())
        srv = WebhookServer(certificates=manager, settings=WebhookServerSettings(
            host="127.0.0.1", port=taken.getsockname()[1]))
        with pytest.raises(OSError):
            await srv.start()
        assert not srv.ready.is_set()
        assert manager._task is None  # the rotation loop was stopped again
    finally:
        taken.close()
    with pytest.raises(RuntimeError, match="no certificate"):
        await WebhookServer(settings=SETTINGS).start()


async def test_a_body_that_never_completes_gets_408_not_a_hang(
    server: WebhookServer, serving: ServingCertificate
) -> None:
    def slow_body() -> bytes:
        ctx = ssl.create_default_context(cadata=serving.ca_pem.decode())
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock, \
                ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            tls.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                        b"\r\nContent-Length: 100\r\n\r\n{\"apiVersion\":")
            return tls.recv(4096)

    import time

    started = time.monotonic()
    answer = await asyncio.to_thread(slow_body)
    assert time.monotonic() - started < 4
    assert answer.startswith(b"HTTP/1.1 408")
    assert b'"code":408' in answer


async def test_reuse_port_lets_two_servers_share_one_port(serving: ServingCertificate,
                                                          ca: CertificateAuthority) -> None:
    hook = ValidatingWebhook(name="v.kuar.com", path="/validate", rules=(RULE,), codec=RAW,
                             validator=NoFtp())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = WebhookServerSettings(host="127.0.0.1", port=port, reuse_port=True)
    first = WebhookServer(webhooks=[hook], certificates=serving, settings=settings)
    second = WebhookServer(webhooks=[hook], certificates=serving, settings=settings)
    await first.start()
    try:
        await second.start()  # without SO_REUSEPORT: "address already in use"
        try:
            review = admission_review(loadtest_v1(scheme="ftp"))  # NoFtp reads v1 fields
            ctx = client_context(ca.cert_pem)
            async with aiohttp.ClientSession() as session:
                for _ in range(4):  # every connection answered, whichever process takes it
                    async with session.post(f"https://127.0.0.1:{port}/validate", json=review,
                                            ssl=ctx) as resp:
                        answer = await resp.json()
                    assert answer["response"]["allowed"] is False
        finally:
            await second.stop()
    finally:
        await first.stop()
