"""Runs examples/webhook_csr_tls as a separate process against the real API server."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import pytest

from kuar.client import Client, Invalid
from tests.examples.running import example

pytestmark = pytest.mark.controlplane

CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


async def test_csr_issued_certificate_serves_the_webhook(
    kubeconfig: Path, namespace: str, kube_client: Client, tmp_path: Path
) -> None:
    async with example("webhook_csr_tls", kubeconfig, namespace,
                       tmp_path / "example.log") as run:
        match = re.search(r"CertificateSigningRequest (\S+)", run.log)
        assert match is not None
        csr = await kube_client.request("GET", f"{CSRS}/{match.group(1)}")
        assert csr["spec"]["signerName"] == f"kuar.dev/example-{namespace}"
        assert [c["type"] for c in csr["status"]["conditions"]] == ["Approved"]
        assert base64.b64decode(csr["status"]["certificate"]).startswith(b"-----BEGIN")
        await asyncio.sleep(0.5)  # the API server's informer picks up the configuration
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        with pytest.raises(Invalid) as info:
            await kube_client.request("POST", path, body={
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nolabel"}})
        assert "metadata.labels[app]: Required value" in info.value.message
        await kube_client.request("POST", path, body={
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "labelled", "labels": {"app": "x"}}})
    assert run.exit_code == 0, run.log
