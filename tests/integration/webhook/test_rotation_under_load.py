"""Certificate rotation while the API server sends admission requests: none may fail."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import os
import socket
import ssl
import time
from pathlib import Path

import pytest

from kuar.client import Client, Invalid
from kuar.webhook import (
    CertificateAuthority,
    FileSource,
    RotationSettings,
    SelfSignedSource,
    WebhookServer,
    issue_serving_certificate,
)
from kuar.webhook.tls import ca_fingerprints
from tests.integration.webhook.conftest import loadtest, loadtest_webhooks

pytestmark = pytest.mark.controlplane


async def load(admin: Client, ns: str, seconds: float, workers: int = 4) -> tuple[int, list[str]]:
    """Create LoadTests from ``workers`` loops for ``seconds``; count answers and failures.

    Every fifth create is invalid and must be denied by the webhook with its message, so the
    webhook is provably in the path; the valid ones pass only if the webhooks (failurePolicy
    Fail) answered. Anything else (a TLS error, a timeout, "failed calling webhook") fails.
    """
    deadline = time.monotonic() + seconds
    ok = 0
    failures: list[str] = []

    async def worker(w: int) -> None:
        nonlocal ok
        i = 0
        while time.monotonic() < deadline:
            i += 1
            invalid = i % 5 == 0
            body = loadtest(f"w{w}-{i}", service="Bad_Name" if invalid else "my-service")
            try:
                await admin.request(
                    "POST", f"/apis/beta.kuar.com/v1/namespaces/{ns}/loadtests", body=body)
                if invalid:
                    failures.append("an invalid LoadTest was admitted")
                else:
                    ok += 1
            except Invalid as exc:
                if invalid and 'admission webhook "validator.kuar.com" denied' in exc.message:
                    ok += 1
                else:
                    failures.append(f"Invalid: {exc}")
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(worker(w) for w in range(workers)))
    return ok, failures


def _fingerprint(port: int) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock, \
            ctx.wrap_socket(sock) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return hashlib.sha256(der).hexdigest()


async def served_fingerprint(server: WebhookServer) -> str:
    return await asyncio.to_thread(_fingerprint, server.port)


async def test_renewal_before_expiry_under_load_drops_no_request(admin: Client, ns: str) -> None:
    # Each certificate is renewed 2 s after it was issued (58 s before it would expire).
    source = SelfSignedSource(validity=dt.timedelta(seconds=60))
    rotation = RotationSettings(renew_before=dt.timedelta(seconds=58))
    async with loadtest_webhooks(admin, source, rotation=rotation) as server:
        manager = server.manager
        assert manager is not None
        first = await served_fingerprint(server)
        ok, failures = await load(admin, ns, seconds=7)
        assert failures == []
        assert ok > 20
        assert manager.rotations >= 2
        assert await served_fingerprint(server) != first
        assert manager.current is not None
        assert await served_fingerprint(server) == manager.current.fingerprint


def write_secret_mount(folder: Path, files: dict[str, bytes], generation: int) -> None:
    """Update files the way the kubelet updates a mounted Secret: a new timestamped folder,
    then one atomic rename of the ``..data`` symlink (cert-manager renewals arrive so)."""
    data = folder / f"..{generation}"
    data.mkdir()
    for name, content in files.items():
        (data / name).write_bytes(content)
    tmp = folder / "..data_tmp"
    tmp.symlink_to(data.name)
    os.replace(tmp, folder / "..data")
    for name in files:
        link = folder / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")


async def test_mounted_files_replaced_by_a_new_ca_under_load_drop_no_request(
    admin: Client, ns: str, tmp_path: Path
) -> None:
    old_ca, new_ca = CertificateAuthority.create("old-ca"), CertificateAuthority.create("new-ca")
    first = issue_serving_certificate(old_ca, ["localhost"], ["127.0.0.1"])
    write_secret_mount(tmp_path, {"tls.crt": first.cert_pem, "tls.key": first.key_pem,
                                  "ca.crt": old_ca.cert_pem}, 1)
    source = FileSource(cert_file=tmp_path / "tls.crt", key_file=tmp_path / "tls.key",
                        ca_file=tmp_path / "ca.crt", poll_interval=0.2)
    rotation = RotationSettings(ca_settle=1.0, retry_min=0.2)
    async with loadtest_webhooks(admin, source, rotation=rotation) as server:
        manager = server.manager
        assert manager is not None

        async def replace_later() -> None:
            await asyncio.sleep(2)
            second = issue_serving_certificate(new_ca, ["localhost"], ["127.0.0.1"])
            write_secret_mount(tmp_path, {"tls.crt": second.cert_pem,
                                          "tls.key": second.key_pem,
                                          "ca.crt": new_ca.cert_pem}, 2)

        (ok, failures), _ = await asyncio.gather(load(admin, ns, seconds=7), replace_later())
        assert failures == []
        assert ok > 20
        assert manager.rotations == 1
        assert manager.current is not None
        assert manager.current.ca_pem == new_ca.cert_pem
        assert await served_fingerprint(server) == manager.current.fingerprint
        # the API server trusts both CAs while the old one may still be served elsewhere
        config = await admin.request(
            "GET", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/"
                   "kuar-validator")
        bundle = base64.b64decode(config["webhooks"][0]["clientConfig"]["caBundle"])
        assert ca_fingerprints(bundle) == ca_fingerprints(old_ca.cert_pem + new_ca.cert_pem)
        crd = await admin.request(
            "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                   "loadtests.beta.kuar.com")
        crd_bundle = crd["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"]
        assert base64.b64decode(crd_bundle) == bundle
