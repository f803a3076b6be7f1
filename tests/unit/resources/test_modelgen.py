"""The model generator: names, markers and round trips on a small OpenAPI document."""

from __future__ import annotations

import json
import sys
import types
from typing import Any

import pytest

from kuar.resources import Resource, ResourceInfo, structural_schema
from kuar.resources.modelgen import ModelGenError, render_models, snake_case


@pytest.mark.parametrize(("json_name", "python"), [
    ("podIP", "pod_ip"),
    ("podIPs", "pod_ips"),
    ("clusterIPs", "cluster_ips"),
    ("hostIPC", "host_ipc"),
    ("nonResourceURLs", "non_resource_urls"),
    ("targetCPUUtilizationPercentage", "target_cpu_utilization_percentage"),
    ("x-kubernetes-embedded-resource", "x_kubernetes_embedded_resource"),
    ("$ref", "ref"),
    ("serverAddressByClientCIDRs", "server_address_by_client_cidrs"),
    ("terminationGracePeriodSeconds", "termination_grace_period_seconds"),
    ("v1", "v1"),
])
def test_snake_case_keeps_acronyms_whole(json_name: str, python: str) -> None:
    assert snake_case(json_name) == python


def _ref(name: str, **extra: Any) -> dict[str, Any]:
    return {"allOf": [{"$ref": f"#/components/schemas/{name}"}], **extra}


META = "io.k8s.apimachinery.pkg.apis.meta.v1"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
DOC = {"components": {"schemas": {
    f"{META}.ObjectMeta": {"type": "object", "properties": {"name": {"type": "string"}}},
    f"{META}.Time": {"type": "string", "format": "date-time"},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "type": "string", "format": "int-or-string"},
    "io.k8s.api.toy.v1.Port": {
        "type": "object", "required": ["name"],
        "properties": {
            "name": {"type": "string", "description": "The port's \"name\"."},
            "targetPort": _ref("io.k8s.apimachinery.pkg.util.intstr.IntOrString"),
        },
    },
    "io.k8s.api.toy.v1.WidgetSpec": {
        "type": "object", "description": "What a widget wants.",
        "properties": {
            "ports": {"type": "array", "items": _ref("io.k8s.api.toy.v1.Port"),
                      "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
            "limits": {"type": "object", "additionalProperties": _ref(QUANTITY)},
            "ratio": {"type": "number", "format": "double"},
            "since": _ref(f"{META}.Time"),
            "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "template": {"type": "object", "x-kubernetes-embedded-resource": True},
            "continue": {"type": "string"},
            "json": {"type": "string"},
        },
    },
    "io.k8s.api.toy.v1.Widget": {
        "type": "object", "description": "A widget.",
        "x-kubernetes-group-version-kind": [{"group": "toy.k8s.io", "version": "v1",
                                            "kind": "Widget"}],
        "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "metadata": _ref(f"{META}.ObjectMeta"),
            "spec": _ref("io.k8s.api.toy.v1.WidgetSpec", description="The spec."),
            "name": {"type": "string", "description": "Collides with Resource.name."},
        },
    },
    "io.k8s.api.toy.v1.WidgetList": {
        "type": "object",
        "x-kubernetes-group-version-kind": [{"group": "toy.k8s.io", "version": "v1",
                                            "kind": "WidgetList"}],
        "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                       "items": {"type": "array", "items": _ref("io.k8s.api.toy.v1.Widget")}},
    },
}}}
SERVED = [ResourceInfo("toy.k8s.io", "v1", "Widget", "widgetz", False)]


@pytest.fixture(scope="module")
def toy() -> types.ModuleType:
    files = render_models([DOC], SERVED, source="a test")
    assert set(files) == {"toy/v1.py", "toy/__init__.py", "_kinds.py"}
    assert "(\"toy.k8s.io\", \"v1\", \"Widget\"): \"toy.v1\"" in files["_kinds.py"]
    module = types.ModuleType("kuar.models.toy.v1")
    sys.modules[module.__name__] = module
    try:
        exec(compile(files["toy/v1.py"], "toy/v1.py", "exec"), module.__dict__)
        yield module
    finally:
        del sys.modules[module.__name__]


def test_generated_kind_is_a_resource_with_discovery_plural_and_scope(
    toy: types.ModuleType,
) -> None:
    info = toy.Widget.resource_info()
    assert issubclass(toy.Widget, Resource)
    assert (info.group, info.version, info.plural, info.namespaced) == (
        "toy.k8s.io", "v1", "widgetz", False)
    assert toy.Widget.__doc__.strip() == "A widget."
    assert not issubclass(toy.WidgetList, Resource)


def test_generated_names_avoid_keywords_and_base_attributes(toy: types.ModuleType) -> None:
    spec_fields = toy.WidgetSpec.model_fields
    assert spec_fields["continue_"].alias == "continue"
    assert spec_fields["json_"].alias == "json"
    assert toy.Widget.model_fields["name_"].alias == "name"
    assert toy.Port.model_fields["name"].description == 'The port\'s "name".'


def test_generated_models_round_trip_exactly(toy: types.ModuleType) -> None:
    data = {
        "apiVersion": "toy.k8s.io/v1", "kind": "Widget", "metadata": {"name": "w"},
        "name": "inner",
        "spec": {"ports": [{"name": "http", "targetPort": 8080},
                           {"name": "x", "targetPort": "web"}],
                 "limits": {"cpu": "500m", "memory": "1Gi"}, "ratio": 1,
                 "since": "2026-11-29T23:37:25Z", "raw": {"a": [1, {"b": None}]},
                 "template": {"apiVersion": "v1", "kind": "Pod"}, "continue": "tok",
                 "unknownField": {"kept": True}},
    }
    widget = toy.Widget.model_validate(data)
    assert widget.spec.ports[0].target_port == 8080
    assert widget.spec.since.year == 2026
    dumped = widget.model_dump_json(by_alias=True, exclude_unset=True)
    assert json.loads(dumped) == data
    assert '"ratio":1,' in dumped  # a number that came as an int is written as an int


def test_quantity_accepts_numbers_as_text(toy: types.ModuleType) -> None:
    spec = toy.WidgetSpec(limits={"cpu": 2, "memory": "1Gi"})
    assert spec.limits == {"cpu": "2", "memory": "1Gi"}


def test_a_crd_field_typed_with_a_generated_model_gets_its_full_schema(
    toy: types.ModuleType,
) -> None:
    schema = structural_schema(toy.WidgetSpec, root=False)
    ports = schema["properties"]["ports"]
    assert ports["x-kubernetes-list-type"] == "map"
    assert ports["items"]["properties"]["targetPort"]["x-kubernetes-int-or-string"] is True
    limits = schema["properties"]["limits"]["additionalProperties"]
    assert limits["x-kubernetes-int-or-string"] is True and "pattern" in limits
    assert schema["properties"]["raw"]["x-kubernetes-preserve-unknown-fields"] is True
    assert schema["properties"]["template"]["x-kubernetes-embedded-resource"] is True
    assert schema["properties"]["ratio"]["type"] == "number"
    assert schema["description"] == "What a widget wants."


def test_rendering_is_deterministic() -> None:
    assert render_models([DOC], SERVED, source="x") == render_models([DOC], SERVED, source="x")


def test_unknown_go_package_is_named_in_the_error() -> None:
    doc = {"components": {"schemas": {"io.example.Thing": {
        "type": "object", "properties": {"a": {"type": "string"}}}}}}
    with pytest.raises(ModelGenError, match=r"io\.example\.Thing"):
        render_models([doc], [], source="x")
