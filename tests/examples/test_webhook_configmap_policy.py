"""Runs examples/webhook_configmap_policy as a separate process against the real API server."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kuar.client import Client, Invalid, NotFound

pytestmark = pytest.mark.controlplane

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/webhook_configmap_policy/main.py"
CONFIGS = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"


async def test_configmap_policy_denies_credentials_and_labels_the_owner(
    kubeconfig: Path, namespace: str, kube_client: Client, tmp_path: Path
) -> None:
    log_path = tmp_path / "example.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, str(EXAMPLE), "--kubeconfig", str(kubeconfig),
                                 "-n", namespace], stdout=log, stderr=subprocess.STDOUT)
    try:
        async with asyncio.timeout(30):
            while "serving on" not in log_path.read_text():
                assert proc.poll() is None, log_path.read_text()
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # the API server's informer picks up the configurations
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        with pytest.raises(Invalid) as info:
            await kube_client.request("POST", path, body={
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad"},
                "data": {"db-password": "hunter2", "host": "db"}})
        assert "data[db-password]: Forbidden: looks like a credential; use a Secret" in \
            info.value.message
        created = await kube_client.request("POST", path, body={
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good"},
            "data": {"host": "db"}})
        assert created["metadata"]["labels"]["examples.kuar.dev/owner"] == "kuar-admin"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 20)
    assert code == 0, log_path.read_text()
    assert "stopped" in log_path.read_text()
    with pytest.raises(NotFound):
        await kube_client.request("GET", f"{CONFIGS}/configmap-policy-{namespace}")
