"""A control plane of its own for the webhook tests, and helpers to run LoadTest webhooks.

The webhook tests install cluster-wide objects (the LoadTest CRD with a conversion webhook,
webhook configurations pointing at servers that stop after each test), so they get their own
control plane (one for this package) instead of the session's shared one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuar.client import Client, NotFound, load_config, wait_crd_established
from kuar.resources import crd_for
from kuar.testing import ControlPlane, ControlPlaneSettings
from kuar.testing.pytest_plugin import Kubectl, make_kubectl
from kuar.webhook import (
    CaBundleInjector,
    CertificateManager,
    CertificateSource,
    RotationSettings,
    UrlTarget,
    WebhookServer,
    WebhookServerSettings,
    apply_configurations,
    conversion_stanza,
    webhook_configurations,
)
from kuar_loadtest.api import v1, v2
from kuar_loadtest.webhooks import LoadTestWebhookSettings, build

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
SEED_CRD = Path(__file__).parents[3] / "src/kuar_loadtest/seed/loadtest-crd.yaml"


@pytest.fixture(scope="package")
def plane() -> Iterator[ControlPlane]:
    cp = ControlPlane(ControlPlaneSettings())
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="package")
def kubectl_wh(plane: ControlPlane) -> Kubectl:
    return make_kubectl(plane)


@pytest.fixture
async def admin(plane: ControlPlane) -> AsyncIterator[Client]:
    client = Client(await load_config(plane.kubeconfig))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def ns(admin: Client) -> AsyncIterator[str]:
    name = f"wh-{uuid.uuid4().hex[:8]}"
    await admin.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name


def two_version_crd(url: str) -> dict[str, Any]:
    """The generator's v1 + v2 CRD with the conversion webhook stanza (caBundle injected later)."""
    return crd_for(v1.LoadTest, v2.LoadTest,
                   conversion=conversion_stanza(UrlTarget(base_url=url)))


def seed_crd() -> dict[str, Any]:
    return yaml.safe_load(SEED_CRD.read_text())


def seed_schema_crd(url: str) -> dict[str, Any]:
    """The generated CRD with v1's schema replaced by the seed's (no constraints at all).

    Storage moved to v2 (docs/decisions/0014), so the webhooks are registered for v2 and the
    seed's single-version CRD no longer reaches them; this keeps the seed's v1 schema."""
    crd = two_version_crd(url)
    (seed_v1,) = seed_crd()["spec"]["versions"]
    for version in crd["spec"]["versions"]:
        if version["name"] == "v1":
            version["schema"] = seed_v1["schema"]
    return crd


async def install_crd(admin: Client, crd: dict[str, Any]) -> None:
    name = crd["metadata"]["name"]
    await admin.request("PATCH", f"{CRD_PATH}/{name}", body=crd,
                        content_type="application/apply-patch+yaml",
                        params={"fieldManager": "kuar-test", "force": True})
    await wait_crd_established(admin, name, timeout=30)


async def delete_crd(admin: Client, name: str) -> None:
    with contextlib.suppress(NotFound):
        await admin.request("DELETE", f"{CRD_PATH}/{name}")
    for _ in range(100):
        try:
            await admin.request("GET", f"{CRD_PATH}/{name}")
        except NotFound:
            return
        import asyncio
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def loadtest_webhooks(
    admin: Client,
    source: CertificateSource,
    *,
    crd: str = "two-versions",
    settings: LoadTestWebhookSettings | None = None,
    rotation: RotationSettings | None = None,
    port: int = 0,
) -> AsyncIterator[WebhookServer]:
    """Run the LoadTest webhooks on 127.0.0.1 with ``source``; install CRD and configurations
    (by URL) and inject the caBundle; remove the configurations afterwards.

    The webhooks fail closed here (the shipped default is to fail open), so a test passes only
    if the webhook really answered."""
    settings = dataclasses.replace(settings or LoadTestWebhookSettings(), failure_policy="Fail")
    validating, mutating, conversion = build(settings)
    configs = webhook_configurations([validating, mutating], UrlTarget(
        base_url="https://127.0.0.1:1"))  # URL fixed below, once the port is known
    injector = CaBundleInjector(client=admin, validating=["kuar-validator"],
                                mutating=["kuar-defaulter"], crds=["loadtests.beta.kuar.com"])
    manager = CertificateManager(source, injector=injector, settings=rotation)
    server = WebhookServer(webhooks=[validating, mutating], conversions=[conversion],
                           certificates=manager,
                           settings=WebhookServerSettings(host="127.0.0.1", port=port))
    await delete_crd(admin, "loadtests.beta.kuar.com")
    await server.start()
    try:
        target = UrlTarget(base_url=server.url)
        configs = webhook_configurations([validating, mutating], target,
                                         ca_bundle=manager.ca_bundle)
        await apply_configurations(admin, configs)
        spec = two_version_crd(server.url) if crd == "two-versions" else \
            seed_schema_crd(server.url)
        spec["spec"]["conversion"] = conversion_stanza(target, ca_bundle=manager.ca_bundle)
        await install_crd(admin, spec)
        yield server
    finally:
        from kuar.webhook import delete_configurations

        await delete_configurations(admin, configs)
        await server.stop()


def loadtest(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"service": "my-service", "scheme": "https",
                            "requestsPerSecond": 1000,
                            "paths": ["/index.html", "/login.html", "/shares/my-shares/"]}
    body.update(spec)
    return {"apiVersion": "beta.kuar.com/v1", "kind": "LoadTest",
            "metadata": {"name": name},
            "spec": {k: v for k, v in body.items() if v is not None}}
