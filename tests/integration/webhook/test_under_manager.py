"""The webhook server and the CSR signer as runnables of the manager."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from kuar.client import Client, Invalid
from kuar.manager import Manager, ManagerSettings
from kuar.webhook import (
    RAW,
    Admission,
    AdmissionRule,
    FieldErrors,
    SelfSignedSource,
    Signer,
    SignerSettings,
    UrlTarget,
    ValidatingWebhook,
    Validator,
    WebhookServer,
    WebhookServerSettings,
    apply_configurations,
    delete_configurations,
    webhook_configurations,
)

pytestmark = pytest.mark.controlplane


class NoEmpty(Validator[dict[str, Any]]):
    def validate_create(self, obj: dict[str, Any], admission: Admission[Any]) -> None:
        errors = FieldErrors()
        if not obj.get("data"):
            errors.required("data")
        errors.raise_if_any()


async def test_webhook_server_and_signer_run_under_the_manager(admin: Client, ns: str) -> None:
    registry = CollectorRegistry()
    hook = ValidatingWebhook(
        name="noempty.kuar.dev", path="/noempty", codec=RAW, validator=NoEmpty(),
        rules=(AdmissionRule(api_groups=("",), api_versions=("v1",), resources=("configmaps",),
                    operations=("CREATE",)),),
        namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": ns}},
        configuration="kuar-test-noempty")
    cert = await SelfSignedSource().fetch()
    server = WebhookServer(webhooks=[hook], certificates=cert, registry=registry,
                           settings=WebhookServerSettings(host="127.0.0.1", port=0))
    signer = Signer(admin, SignerSettings(allowed_requesters=frozenset({"nobody"}),
                                          allowed_dns_names=frozenset({"x.svc"}),
                                          namespace=ns))
    manager = Manager(admin, ManagerSettings(health=None, handle_signals=False),
                      registry=registry)
    manager.add(server)
    manager.add(signer)
    running = asyncio.create_task(manager.run())
    configs: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(20):
            await server.ready.wait()
            await signer.ready.wait()
        configs = webhook_configurations([hook], UrlTarget(base_url=server.url),
                                         ca_bundle=cert.ca_pem)
        await apply_configurations(admin, configs)
        with pytest.raises(Invalid) as info:
            await admin.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body={
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "empty"}})
        assert "data: Required value" in info.value.message
        metrics = generate_latest(registry).decode()
        assert 'controller_runtime_webhook_requests_total{code="200",webhook="noempty.kuar.dev"}' \
            in metrics
        assert signer.ca is not None  # the signer made its CA Secret in the namespace
    finally:
        await delete_configurations(admin, configs)
        manager.stop()
        async with asyncio.timeout(20):
            await running
    assert not server.ready.is_set()
