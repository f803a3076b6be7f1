"""Generated CRDs on the real API server: accepted, Established, validating, pruning, status."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuar.client import Api, Client, Invalid, apply_manifests, parse_manifests
from kuar.resources import crds_for, find_resources
from kuar_loadtest.api import LoadTest, LoadTestSpec, LoadTestStatus
from tests.integration.resources.helpers import install
from tests.unit.resources.widgets import Gadget, Widget, WidgetSpec

pytestmark = pytest.mark.controlplane

REPO = Path(__file__).resolve().parents[3]
SEED = REPO / "src" / "kuar_loadtest" / "seed"


async def _crd_conditions(client: Client, name: str) -> dict[str, str]:
    crd = await client.request(
        "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    )
    return {c["type"]: c["status"] for c in crd["status"]["conditions"]}


async def test_every_generated_crd_is_accepted_and_established(kube_client: Client) -> None:
    committed = [
        doc for path in sorted((REPO / "deploy" / "crds").glob("*.yaml"))
        if path.name != "kustomization.yaml"  # kustomize's index of the folder, not an object
        for doc in parse_manifests(path.read_text(), source=str(path))
    ]
    assert committed, "deploy/crds holds no CRD"
    await apply_manifests(kube_client, committed, field_manager="kuar-tests")
    for cls in (Widget, Gadget):
        await install(kube_client, cls)
    for name in [d["metadata"]["name"] for d in committed] + [
        "widgets.widgets.test.kuar.dev", "gadgets.widgets.test.kuar.dev"
    ]:
        conditions = await _crd_conditions(kube_client, name)
        assert conditions.get("Established") == "True", (name, conditions)
        assert conditions.get("NonStructuralSchema") is None, (name, conditions)


async def test_kubectl_explain_lists_the_loadtest_spec_fields(
    kube_client: Client, kubectl: Any
) -> None:
    await install(kube_client, LoadTest)
    out = ""
    for _ in range(50):  # the OpenAPI document is published a moment after Established
        proc = kubectl("explain", "loadtest.spec", check=False)
        out = proc.stdout
        if proc.returncode == 0 and "requestsPerSecond" in out and "workers" in out:
            break
        await asyncio.sleep(0.2)
    for field in ("service", "scheme", "requestsPerSecond", "paths", "port", "duration",
                  "workers"):
        assert field in out, out
    assert "The total request rate" in out


async def test_seed_my_loadtest_is_valid_unchanged_and_decodes(
    kube_client: Client, namespace: str
) -> None:
    await install(kube_client, LoadTest)
    seed = yaml.safe_load((SEED / "my-loadtest.yaml").read_text())
    await apply_manifests(kube_client, [seed], namespace=namespace, field_manager="kuar-tests")
    got = await Api(kube_client, LoadTest, namespace=namespace).get("my-loadtest")
    assert got.spec.service == "my-service"
    assert got.spec.scheme == "https"
    assert got.spec.requests_per_second == 1000
    assert got.spec.paths == ["/index.html", "/login.html", "/shares/my-shares/"]
    assert got.spec.workers is None and got.spec.duration == "60s"  # the schema's defaults


async def test_an_object_breaking_a_cel_rule_is_rejected_with_its_message(
    kube_client: Client, namespace: str
) -> None:
    await install(kube_client, LoadTest)
    api = Api(kube_client, LoadTest, namespace=namespace)
    bad = LoadTest(metadata={"name": "too-slow"},
                   spec=LoadTestSpec(service="s", requests_per_second=2, workers=5))
    with pytest.raises(Invalid) as err:
        await api.create(bad)
    assert "requestsPerSecond must be at least workers" in str(err.value)
    assert any(c.field == "spec.requestsPerSecond" for c in err.value.causes), err.value.causes


async def test_openapi_limits_are_enforced_by_the_api_server(
    kube_client: Client, namespace: str
) -> None:
    await install(kube_client, LoadTest)
    body = {"apiVersion": "beta.kuar.com/v1", "kind": "LoadTest",
            "metadata": {"name": "bad-limits"},
            "spec": {"service": "s", "requestsPerSecond": 0, "scheme": "ftp",
                     "paths": ["no-slash"]}}
    with pytest.raises(Invalid) as err:
        await kube_client.request(
            "POST", f"/apis/beta.kuar.com/v1/namespaces/{namespace}/loadtests", body=body
        )
    fields = {c.field for c in err.value.causes}
    assert {"spec.requestsPerSecond", "spec.scheme", "spec.paths[0]"} <= fields, fields


async def test_unknown_fields_are_pruned_unless_the_schema_keeps_them(
    kube_client: Client, namespace: str
) -> None:
    await install(kube_client, Widget)
    body = {
        "apiVersion": "widgets.test.kuar.dev/v1", "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {
            "size": 3, "unknownField": "dropped",
            "loose": {"known": "k", "anything": {"nested": [1, 2]}},
            "blob": {"free": {"form": True}},
            "template": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                         "data": {"a": "b"}},
        },
    }
    created = await kube_client.request(
        "POST", f"/apis/widgets.test.kuar.dev/v1/namespaces/{namespace}/widgets",
        body=body, params={"fieldValidation": "Ignore"},
    )
    spec = created["spec"]
    assert "unknownField" not in spec
    assert spec["loose"] == {"known": "k", "anything": {"nested": [1, 2]}}
    assert spec["blob"] == {"free": {"form": True}}
    assert spec["template"]["data"] == {"a": "b"}
    widget = Widget.decode(created)
    assert widget.spec.loose is not None and widget.spec.loose.model_extra == {
        "anything": {"nested": [1, 2]}
    }
    assert widget.encode()["spec"]["loose"] == spec["loose"]


async def test_strict_field_validation_rejects_unknown_fields_from_typed_writes(
    kube_client: Client, namespace: str
) -> None:
    await install(kube_client, Widget)
    api = Api(kube_client, Widget, namespace=namespace)
    typo = Widget(metadata={"name": "typo"}, spec=WidgetSpec(size=1, sise=2))  # type: ignore[call-arg]
    with pytest.raises(Exception) as err:
        await api.create(typo)
    assert "sise" in str(err.value)


async def test_status_written_through_the_subresource_is_kept(
    kube_client: Client, namespace: str
) -> None:
    await install(kube_client, LoadTest)
    api = Api(kube_client, LoadTest, namespace=namespace)
    created = await api.create(LoadTest(
        metadata={"name": f"st-{uuid.uuid4().hex[:6]}"},
        spec=LoadTestSpec(service="svc", requests_per_second=10),
        status=LoadTestStatus(phase="Running"),  # ignored: status is a subresource
    ))
    assert created.status is None
    created.status = LoadTestStatus(phase="Running", observed_generation=1, job_name="j")
    await api.replace_status(created)
    got = await api.get(created.name)
    assert got.status is not None and got.status.phase == "Running"
    assert got.status.job_name == "j"
    got.spec.requests_per_second = 20
    got.status.phase = "Failed"  # a spec update does not touch status
    updated = await api.replace(got)
    assert updated.spec.requests_per_second == 20
    assert updated.status is not None and updated.status.phase == "Running"


async def test_printer_columns_show_in_kubectl_get(
    kube_client: Client, namespace: str, kubectl: Any
) -> None:
    await install(kube_client, LoadTest)
    await Api(kube_client, LoadTest, namespace=namespace).create(LoadTest(
        metadata={"name": "cols"}, spec=LoadTestSpec(service="web", requests_per_second=42),
    ))
    out = kubectl("get", "lt", "-n", namespace).stdout
    header, row = out.splitlines()[:2]
    opts = LoadTest.__kuar_crd__
    assert opts is not None
    assert header.split() == ["NAME", *(c.name.upper() for c in opts.printer_columns)]
    assert header.split()[:4] == ["NAME", "SERVICE", "RPS", "PHASE"]
    assert row.split()[:3] == ["cols", "web", "42"]


def test_generated_crd_matches_the_committed_file() -> None:
    committed = yaml.safe_load((REPO / "deploy/crds/beta.kuar.com_loadtests.yaml").read_text())
    from kuar.webhook import ServiceTarget, conversion_stanza

    stanza = conversion_stanza(ServiceTarget(namespace="kuar-system", name="kuar-webhook"))
    generated = {c["metadata"]["name"]: c
                 for c in crds_for(find_resources("kuar_loadtest.api"), conversion=stanza)}
    assert committed == generated["loadtests.beta.kuar.com"]
