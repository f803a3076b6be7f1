"""Shared pieces for webhook unit tests: a CA, certificates for 127.0.0.1, review builders."""

from __future__ import annotations

import json
import ssl
import uuid
from typing import Any

import pytest

from kuar.webhook import CertificateAuthority, ServingCertificate, issue_serving_certificate
from kuar_loadtest.api.conversion import v1_to_v2


@pytest.fixture(scope="session")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("test-ca")


@pytest.fixture
def serving(ca: CertificateAuthority) -> ServingCertificate:
    return issue_serving_certificate(ca, ["localhost"], ["127.0.0.1"])


def client_context(ca_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    return ctx


def admission_review(
    obj: dict[str, Any] | None = None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    dry_run: bool = False,
    uid: str | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": {"group": "beta.kuar.com", "version": "v1", "kind": "LoadTest"},
            "resource": {"group": "beta.kuar.com", "version": "v1", "resource": "loadtests"},
            "name": "my-loadtest",
            "namespace": "default",
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": dry_run,
        },
    }


def body(review: dict[str, Any]) -> bytes:
    return json.dumps(review).encode()


def loadtest(**spec: Any) -> dict[str, Any]:
    """The seed's my-loadtest with ``spec`` (v1 field names) changed, as the webhooks see it:
    converted to v2, the storage version they are registered for."""
    return {**v1_to_v2(loadtest_v1(**spec)), "apiVersion": "beta.kuar.com/v2"}


def loadtest_v1(**spec: Any) -> dict[str, Any]:
    """The seed's my-loadtest (v1) with ``spec`` changed; ``None`` removes a field."""
    base: dict[str, Any] = {"service": "my-service", "scheme": "https",
                            "requestsPerSecond": 1000,
                            "paths": ["/index.html", "/login.html", "/shares/my-shares/"]}
    base.update(spec)
    base = {k: v for k, v in base.items() if v is not None}
    return {"apiVersion": "beta.kuar.com/v1", "kind": "LoadTest",
            "metadata": {"name": "my-loadtest", "namespace": "default",
                         "creationTimestamp": None},
            "spec": base}
