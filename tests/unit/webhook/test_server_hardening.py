"""Issue 14, finding 6: the webhook server's gaps, each closed.

Deeply nested JSON is a 400 (not a 500 and a traceback), TLS 1.2 offers only ECDHE with AEAD
ciphers, client certificates can be required (API servers that present one), and conversion
has a time budget like admission (a slow converter neither blocks the event loop nor hangs
the API server's call).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import BaseModel

from kuar.webhook import (
    RAW,
    Admission,
    CertificateAuthority,
    Codec,
    ConversionWebhook,
    HubAndSpoke,
    ServingCertificate,
    Spoke,
    ValidatingWebhook,
    Validator,
    WebhookServer,
    WebhookServerSettings,
)
from kuar.webhook.admission import AdmissionRule
from kuar.webhook.tls import new_server_context
from kuar_loadtest.api.conversion import LOADTEST_CONVERSION
from tests.unit.webhook.conftest import admission_review, client_context, loadtest, loadtest_v1

RULE = AdmissionRule(api_groups=("beta.kuar.com",), api_versions=("v1",), resources=("loadtests",))
SETTINGS = WebhookServerSettings(host="127.0.0.1", port=0, body_timeout=1.0,
                                 handshake_timeout=1.0)


class AllowAll(Validator[dict[str, Any]]):
    def validate_create(self, obj: dict[str, Any], admission: Admission[Any]) -> None:
        return None


def _hook() -> ValidatingWebhook[dict[str, Any]]:
    return ValidatingWebhook(name="v.kuar.com", path="/validate", rules=(RULE,), codec=RAW,
                             validator=AllowAll())


@pytest.fixture
async def server(serving: ServingCertificate) -> AsyncIterator[WebhookServer]:
    srv = WebhookServer(webhooks=[_hook()], conversions=[ConversionWebhook(
        converters=[LOADTEST_CONVERSION])], certificates=serving, settings=SETTINGS)
    async with srv:
        yield srv


@pytest.fixture
async def http(serving: ServingCertificate) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(ssl=client_context(serving.ca_pem))
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def _post(http: aiohttp.ClientSession, url: str, data: bytes) -> tuple[int, Any]:
    async with http.post(url, data=data, headers={"Content-Type": "application/json"}) as resp:
        assert resp.content_type == "application/json"
        return resp.status, await resp.json()


# --- deeply nested JSON ---------------------------------------------------------------------

def _nested(depth: int) -> dict[str, Any]:
    inner: dict[str, Any] = {}
    for _ in range(depth):
        inner = {"a": inner}
    return inner


@pytest.mark.parametrize("path", ["/validate", "/convert"])
@pytest.mark.parametrize(("shape", "depth"), [
    ("bare arrays", 50_000), ("inside a review", 50_000),
    ("inside a review", 960),  # parses, but is too deep for what comes after parsing
])
async def test_deeply_nested_json_is_a_400_not_a_500(
    server: WebhookServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture,
    path: str, shape: str, depth: int,
) -> None:
    if shape == "bare arrays":
        data = b"[" * depth + b"]" * depth
    else:
        review = admission_review(loadtest())
        head, _, tail = json.dumps(review).partition('"oldObject": null')
        if path == "/convert":
            review = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
                      "request": {"uid": "c", "desiredAPIVersion": "beta.kuar.com/v2",
                                  "objects": [loadtest_v1()]}}
            head, _, tail = json.dumps(review).partition('"creationTimestamp": null')
            head += '"creationTimestamp": null, "labels": '
            data = (head + '{"a":' * depth + "{}" + "}" * depth + tail).encode()
        else:
            data = (head + '"oldObject": ' + '{"a":' * depth + "{}" + "}" * depth + tail).encode()
    with caplog.at_level(logging.ERROR, logger="kuar.webhook"):
        status, answer = await _post(http, server.url + path, data)
    if depth > 1000:
        assert status == 400, answer
        assert answer["kind"] == "Status" and answer["code"] == 400
        assert "nested too deeply" in answer["message"]
    else:  # parsed: answered as a review, or refused as too deep; never a 500
        assert status in (200, 400), answer
    assert not [r for r in caplog.records if r.exc_info], "no traceback is logged"
    async with http.get(server.url + "/healthz") as resp:  # and the server still serves
        assert resp.status == 200


# --- TLS 1.2 cipher suites ------------------------------------------------------------------

def test_tls_1_2_suites_are_ecdhe_with_aead_only() -> None:
    suites = [c for c in new_server_context().get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert suites
    for suite in suites:
        assert suite["aead"], suite["name"]
        assert suite["kea"] == "kx-ecdhe", suite["name"]
        assert suite["auth"] in ("auth-ecdsa", "auth-rsa"), suite["name"]


def _tls12_handshake(port: int, ca_pem: bytes, ciphers: str) -> str:
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock, \
            ctx.wrap_socket(sock, server_hostname="localhost") as tls:
        cipher = tls.cipher()
        assert cipher is not None
        return cipher[0]


@pytest.mark.parametrize("ciphers", [
    "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA",          # CBC, the key's type either way
    "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384",    # CBC with SHA-2
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-SHA",         # finite-field DHE
])
async def test_a_client_offering_only_cbc_or_dhe_suites_is_refused(
    server: WebhookServer, serving: ServingCertificate, ciphers: str
) -> None:
    with pytest.raises(ssl.SSLError):
        await asyncio.to_thread(_tls12_handshake, server.port, serving.ca_pem, ciphers)


async def test_a_tls_1_2_client_with_ecdhe_aead_is_served(
    server: WebhookServer, serving: ServingCertificate
) -> None:
    got = await asyncio.to_thread(_tls12_handshake, server.port, serving.ca_pem,
                                  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")
    assert got.startswith("ECDHE-") and "GCM" in got


# --- client certificates --------------------------------------------------------------------

@pytest.fixture
def client_ca(tmp_path: Path) -> tuple[CertificateAuthority, Path]:
    ca = CertificateAuthority.create("api-server-client-ca")
    path = tmp_path / "client-ca.crt"
    path.write_bytes(ca.cert_pem)
    return ca, path


def _client_session(serving: ServingCertificate, tmp_path: Path,
                    pair: Any | None) -> aiohttp.ClientSession:
    ctx = client_context(serving.ca_pem)
    if pair is not None:
        cert, key = tmp_path / "client.crt", tmp_path / "client.key"
        cert.write_bytes(pair.cert_pem)
        key.write_bytes(pair.key_pem)
        ctx.load_cert_chain(str(cert), str(key))
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx))


async def test_client_certificates_required_when_a_client_ca_is_set(
    serving: ServingCertificate, client_ca: tuple[CertificateAuthority, Path], tmp_path: Path,
) -> None:
    ca, ca_file = client_ca
    settings = WebhookServerSettings(host="127.0.0.1", port=0, handshake_timeout=1.0,
                                     client_ca_file=str(ca_file))
    review = json.dumps(admission_review(loadtest())).encode()
    async with WebhookServer(webhooks=[_hook()], certificates=serving, settings=settings) as srv:
        # no certificate: refused during the handshake (TLS 1.3 reports it on first read)
        async with _client_session(serving, tmp_path, None) as http:
            with pytest.raises(aiohttp.ClientError):
                await _post(http, srv.url + "/validate", review)
        # a certificate from another CA: refused
        stranger = CertificateAuthority.create("someone-else").issue_client("kube-apiserver")
        async with _client_session(serving, tmp_path, stranger) as http:
            with pytest.raises(aiohttp.ClientError):
                await _post(http, srv.url + "/validate", review)
        # a certificate signed by the configured CA: served
        good = ca.issue_client("kube-apiserver")
        async with _client_session(serving, tmp_path, good) as http:
            status, answer = await _post(http, srv.url + "/validate", review)
    assert status == 200 and answer["response"]["allowed"] is True


async def test_without_a_client_ca_no_client_certificate_is_asked_for(
    server: WebhookServer, http: aiohttp.ClientSession
) -> None:
    review = json.dumps(admission_review(loadtest())).encode()
    status, _ = await _post(http, server.url + "/validate", review)
    assert status == 200


async def test_a_missing_client_ca_file_fails_start_with_its_name(
    serving: ServingCertificate, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.crt"
    settings = WebhookServerSettings(host="127.0.0.1", port=0, client_ca_file=str(missing))
    with pytest.raises(ValueError, match=r"nowhere\.crt"):
        await WebhookServer(certificates=serving, settings=settings).start()


# --- conversion time budget -----------------------------------------------------------------

class Hub(BaseModel):
    apiVersion: str
    kind: str
    metadata: dict[str, Any]
    spec: dict[str, Any]


class Old(BaseModel):
    apiVersion: str
    kind: str
    metadata: dict[str, Any]
    spec: dict[str, Any]


def _slow_to_hub(old: Old) -> Hub:
    time.sleep(1.5)  # a synchronous converter stuck in something slow
    return Hub(apiVersion="x.io/v2", kind="T", metadata=old.metadata, spec=old.spec)


def _from_hub(hub: Hub) -> Old:
    return Old(apiVersion="x.io/v1", kind="T", metadata=hub.metadata, spec=hub.spec)


SLOW = HubAndSpoke(group="x.io", kind="T", hub_version="v2", hub=Codec.of(Hub), spokes=[
    Spoke(version="v1", codec=Codec.of(Old), to_hub=_slow_to_hub, from_hub=_from_hub)])


async def test_a_slow_conversion_is_answered_with_a_failure_within_its_budget(
    serving: ServingCertificate, http: aiohttp.ClientSession
) -> None:
    conv = ConversionWebhook(converters=[SLOW], handler_timeout=0.3)
    review = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
              "request": {"uid": "slow-1", "desiredAPIVersion": "x.io/v2", "objects": [
                  {"apiVersion": "x.io/v1", "kind": "T", "metadata": {"name": "t"},
                   "spec": {}}]}}
    async with WebhookServer(conversions=[conv], certificates=serving,
                             settings=SETTINGS) as srv:
        started = time.monotonic()
        pending = asyncio.create_task(_post(http, srv.url + "/convert",
                                            json.dumps(review).encode()))
        await asyncio.sleep(0.1)
        # the event loop is free while the converter runs: health answers at once
        async with http.get(srv.url + "/healthz") as resp:
            assert resp.status == 200
        assert time.monotonic() - started < 0.8
        status, answer = await pending
        elapsed = time.monotonic() - started
    assert status == 200
    assert answer["response"]["uid"] == "slow-1"
    assert answer["response"]["result"]["status"] == "Failure"
    assert "timed out after 0.3 s" in answer["response"]["result"]["message"]
    assert answer["response"]["convertedObjects"] == []
    assert elapsed < 1.2, elapsed


def test_conversion_budget_defaults_to_admissions() -> None:
    conv = ConversionWebhook(converters=[SLOW])
    assert conv.budget == ValidatingWebhook(
        name="v.kuar.com", path="/v", rules=(RULE,), validator=AllowAll()).budget == 9.0
