"""Runs examples/webhook_configmap_policy as a separate process against the real API server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kuar.client import Client, Invalid, NotFound
from tests.examples.running import example

pytestmark = pytest.mark.controlplane

CONFIGS = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"


async def test_configmap_policy_denies_credentials_and_labels_the_owner(
    kubeconfig: Path, namespace: str, kube_client: Client, tmp_path: Path
) -> None:
    async with example("webhook_configmap_policy", kubeconfig, namespace,
                       tmp_path / "example.log", timeout=30) as run:
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
    assert run.exit_code == 0, run.log
    assert "stopped" in run.log
    with pytest.raises(NotFound):
        await kube_client.request("GET", f"{CONFIGS}/configmap-policy-{namespace}")
