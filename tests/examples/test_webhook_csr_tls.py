"""Runs examples/webhook_csr_tls as a separate process against the real API server."""

from __future__ import annotations

import asyncio
import base64
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kuar.client import Client, Invalid

pytestmark = pytest.mark.controlplane

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/webhook_csr_tls/main.py"
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


async def test_csr_issued_certificate_serves_the_webhook(
    kubeconfig: Path, namespace: str, kube_client: Client, tmp_path: Path
) -> None:
    log_path = tmp_path / "example.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, str(EXAMPLE), "--kubeconfig", str(kubeconfig),
                                 "-n", namespace], stdout=log, stderr=subprocess.STDOUT)
    try:
        async with asyncio.timeout(60):
            while "serving on" not in log_path.read_text():
                assert proc.poll() is None, log_path.read_text()
                await asyncio.sleep(0.1)
        match = re.search(r"CertificateSigningRequest (\S+)", log_path.read_text())
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
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 20)
    assert code == 0, log_path.read_text()
