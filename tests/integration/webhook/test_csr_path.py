"""The seed's certificate path end to end: key and CSR, approved, issued, served, trusted."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator

import pytest
from cryptography import x509

from kuar.client import Client, Invalid, load_config
from kuar.testing import ControlPlane, eventually_async
from kuar.webhook import CertificateRequestError, CsrSource, Signer, SignerSettings
from kuar.webhook.certificates import CSR_PATH
from tests.integration.webhook.conftest import loadtest, loadtest_webhooks

pytestmark = pytest.mark.controlplane

REQUESTER = "kuar-webhook"
DNS = ["kuar-webhook.kuar-system.svc", "kuar-webhook.kuar-system.svc.cluster.local"]
SETTINGS = SignerSettings(allowed_requesters=frozenset({REQUESTER}),
                          allowed_dns_names=frozenset(DNS), allowed_ips=frozenset({"127.0.0.1"}),
                          namespace="kuar-system")


async def _apply(admin: Client, path: str, body: dict) -> None:
    await admin.request("PATCH", f"{path}/{body['metadata']['name']}", body=body,
                        content_type="application/apply-patch+yaml",
                        params={"fieldManager": "kuar-test", "force": True})


@pytest.fixture
async def requester(plane: ControlPlane, admin: Client) -> AsyncIterator[Client]:
    """The webhook's identity: may create and read CSRs and read the signer's CA ConfigMap."""
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    await _apply(admin, "/api/v1/namespaces", {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kuar-system"}})
    await _apply(admin, f"{rbac}/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "kuar-webhook-csr"},
        "rules": [{"apiGroups": ["certificates.k8s.io"],
                   "resources": ["certificatesigningrequests"],
                   "verbs": ["create", "get", "list", "watch"]}]})
    await _apply(admin, f"{rbac}/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "kuar-webhook-csr"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "kuar-webhook-csr"},
        "subjects": [{"kind": "User", "name": REQUESTER,
                      "apiGroup": "rbac.authorization.k8s.io"}]})
    await _apply(admin, f"{rbac}/namespaces/kuar-system/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "kuar-webhook-ca", "namespace": "kuar-system"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                   "resourceNames": ["kuar-webhook-signer-ca"], "verbs": ["get"]}]})
    await _apply(admin, f"{rbac}/namespaces/kuar-system/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "kuar-webhook-ca", "namespace": "kuar-system"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "kuar-webhook-ca"},
        "subjects": [{"kind": "User", "name": REQUESTER,
                      "apiGroup": "rbac.authorization.k8s.io"}]})
    client = Client(await load_config(plane.add_user(REQUESTER)))
    try:
        yield client
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def running(signer: Signer) -> AsyncIterator[Signer]:
    await signer.start()
    try:
        yield signer
    finally:
        await signer.stop()


async def test_csr_issued_by_kuar_signer_is_served_and_trusted_by_the_api_server(
    admin: Client, requester: Client, ns: str
) -> None:
    async with running(Signer(admin, SETTINGS)) as signer:
        source = CsrSource(client=requester, dns_names=DNS, ips=["127.0.0.1"],
                           expiration_seconds=3600, timeout=30)
        async with loadtest_webhooks(admin, source) as server:
            # the API server reached the webhook over TLS with the CSR-issued certificate
            with pytest.raises(Invalid) as info:
                await admin.request("POST", f"/apis/beta.kuar.com/v1/namespaces/{ns}/loadtests",
                                    body=loadtest("bad", service="Bad_Name"))
            assert 'admission webhook "validator.kuar.com" denied' in info.value.message
            ok = await admin.request("POST", f"/apis/beta.kuar.com/v1/namespaces/{ns}/loadtests",
                                     body=loadtest("good", scheme=None))
            assert ok["spec"]["scheme"] == "http"

            csr = await admin.request("GET", f"{CSR_PATH}/{source.last_csr_name}")
            assert csr["spec"]["username"] == REQUESTER
            assert csr["spec"]["signerName"] == "kuar.dev/webhook-serving"
            conditions = {c["type"]: c for c in csr["status"]["conditions"]}
            assert conditions["Approved"]["reason"] == "KuarSignerApproved"
            issued = base64.b64decode(csr["status"]["certificate"])
            assert server.tls.current is not None
            assert server.tls.current.cert_pem == issued
            assert source.last_csr_name in signer.signed
            cert = x509.load_pem_x509_certificate(issued)
            assert signer.ca is not None
            assert cert.issuer == signer.ca.cert.subject
            lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
            assert lifetime.total_seconds() <= 3600 + 120
            # the CA key lives in a Secret, the public CA in a ConfigMap
            secret = await admin.request(
                "GET", "/api/v1/namespaces/kuar-system/secrets/kuar-webhook-signer-ca")
            assert set(secret["data"]) == {"tls.crt", "tls.key"}
            cm = await admin.request(
                "GET", "/api/v1/namespaces/kuar-system/configmaps/kuar-webhook-signer-ca")
            assert cm["data"]["ca.crt"].encode() == signer.ca.cert_pem

            # renewal goes the same way: a new key, a new CSR, served at once, still trusted
            first_csr = source.last_csr_name
            manager = server.manager
            assert manager is not None
            assert await manager.refresh() is True
            assert source.last_csr_name != first_csr
            assert manager.rotations == 1
            with pytest.raises(Invalid) as info2:
                await admin.request("POST", f"/apis/beta.kuar.com/v1/namespaces/{ns}/loadtests",
                                    body=loadtest("after-renewal", service="Bad_Name"))
            assert 'admission webhook "validator.kuar.com" denied' in info2.value.message
            await admin.request("POST", f"/apis/beta.kuar.com/v1/namespaces/{ns}/loadtests",
                                body=loadtest("after-renewal"))


async def test_signer_denies_the_wrong_requester_and_unexpected_names(
    admin: Client, requester: Client
) -> None:
    async with running(Signer(admin, SETTINGS)) as signer:
        wrong_user = CsrSource(client=admin, dns_names=DNS, timeout=15)
        with pytest.raises(CertificateRequestError, match=r"denied: KuarSignerPolicy.*"
                                                           r"kuar-admin"):
            await wrong_user.fetch()
        extra_name = CsrSource(client=requester, dns_names=[*DNS, "evil.example.com"],
                               timeout=15)
        with pytest.raises(CertificateRequestError, match=r"evil\.example\.com"):
            await extra_name.fetch()
        names = {wrong_user.last_csr_name, extra_name.last_csr_name}

        async def both_denied() -> None:
            assert names <= set(signer.denied)

        await eventually_async(both_denied, timeout=5)
        assert not names & set(signer.signed)
        for name in (wrong_user.last_csr_name, extra_name.last_csr_name):
            csr = await admin.request("GET", f"{CSR_PATH}/{name}")
            assert "certificate" not in (csr.get("status") or {})
