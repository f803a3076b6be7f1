"""Structural schemas: every node typed, no $ref, markers and constraints mapped faithfully."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import pytest
from pydantic import Field

from kuar.resources import (
    CustomResource,
    DeclarationError,
    KubeModel,
    ListType,
    structural_schema,
)
from tests.unit.resources.widgets import Widget


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(node, dict):
        out.append((path, node))
        for key, value in node.get("properties", {}).items():
            out += _walk(value, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            out += _walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            out += _walk(node["additionalProperties"], f"{path}[*]")
    return out


def _spec_props(cls: type[CustomResource]) -> dict[str, Any]:
    props: dict[str, Any] = structural_schema(cls)["properties"]["spec"]["properties"]
    return props


def test_every_node_is_structural_with_a_type_and_no_refs_or_unions() -> None:
    schema = structural_schema(Widget)
    assert "$ref" not in repr(schema) and "$defs" not in repr(schema)
    for path, node in _walk(schema):
        assert not {"anyOf", "oneOf", "allOf", "title", "additionalProperties"} & (
            set(node) - ({"additionalProperties"} if "properties" not in node else set())
        ), path
        assert (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        ), path
        assert not ("properties" in node and "additionalProperties" in node), path


def test_root_metadata_is_a_bare_object_and_api_version_kind_are_strings() -> None:
    props = structural_schema(Widget)["properties"]
    assert props["metadata"] == {"type": "object"}
    assert props["apiVersion"]["type"] == props["kind"]["type"] == "string"
    assert structural_schema(Widget)["required"] == ["spec"]


def test_optional_fields_become_nullable_without_a_null_default() -> None:
    props = _spec_props(Widget)
    assert props["mode"] == {"enum": ["fast", "slow"], "nullable": True, "type": "string"}
    assert props["loose"]["nullable"] is True and "default" not in props["loose"]


def test_constraints_map_to_openapi_v3_keywords() -> None:
    props = _spec_props(Widget)
    assert props["size"] == {"description": "How big, from 1 to 100.", "maximum": 100,
                             "minimum": 1, "type": "integer"}
    assert props["ratio"]["exclusiveMinimum"] is True and props["ratio"]["minimum"] == 0
    assert props["name"]["pattern"] == "^[a-z]+$" and props["name"]["maxLength"] == 20
    assert props["color"] == {"default": "red", "enum": ["red", "green"], "type": "string"}
    assert props["tags"]["maxItems"] == 10
    assert props["host"]["format"] == "hostname"
    assert props["payload"]["format"] == "byte"
    assert props["since"]["format"] == "date-time"


def test_kubernetes_extensions_come_from_markers() -> None:
    props = _spec_props(Widget)
    assert props["tags"]["x-kubernetes-list-type"] == "set"
    assert props["ports"]["x-kubernetes-list-type"] == "map"
    assert props["ports"]["x-kubernetes-list-map-keys"] == ["name"]
    assert props["target"] == {"default": 8080, "x-kubernetes-int-or-string": True}
    assert props["labels"]["x-kubernetes-map-type"] == "granular"
    assert props["blob"]["x-kubernetes-preserve-unknown-fields"] is True
    assert props["loose"]["x-kubernetes-preserve-unknown-fields"] is True
    assert props["template"]["x-kubernetes-embedded-resource"] is True
    assert props["limits"]["x-kubernetes-validations"] == [
        {"rule": "self.min <= self.max", "message": "min must not exceed max"}
    ]
    assert props["immutableKey"]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"


def test_python_set_becomes_a_set_list_not_unique_items() -> None:
    class M(KubeModel):
        names: set[str] = Field(default_factory=set)

    node = structural_schema(M, root=False)["properties"]["names"]
    assert node["x-kubernetes-list-type"] == "set" and "uniqueItems" not in node


def test_any_becomes_preserve_unknown_fields() -> None:
    class M(KubeModel):
        anything: Any = None
        items: list[Any] = Field(default_factory=list)

    props = structural_schema(M, root=False)["properties"]
    assert props["anything"] == {"x-kubernetes-preserve-unknown-fields": True}
    assert props["items"]["items"] == {"x-kubernetes-preserve-unknown-fields": True}


def _error(model: type[KubeModel]) -> str:
    with pytest.raises(DeclarationError) as err:
        structural_schema(model, root=False)
    return str(err.value)


def test_a_union_of_types_is_refused_naming_class_and_field() -> None:
    class Holder(KubeModel):
        value_or_list: int | list[int] = 0

    message = _error(Holder)
    assert "Holder.value_or_list (valueOrList)" in message and "union" in message


def test_a_tuple_is_refused() -> None:
    class Holder(KubeModel):
        pair: tuple[int, int] = (0, 0)

    assert "Holder.pair" in _error(Holder) and "tuple" in _error(Holder)


def test_timedelta_and_bytes_are_refused_with_a_hint() -> None:
    class Timed(KubeModel):
        timeout: timedelta = timedelta(seconds=1)

    class Raw(KubeModel):
        data: bytes = b""

    assert "Timed.timeout" in _error(Timed) and "pattern" in _error(Timed)
    assert "Raw.data" in _error(Raw) and "Base64Bytes" in _error(Raw)


def test_a_recursive_model_is_refused() -> None:
    class Tree(KubeModel):
        children: list[Tree] = Field(default_factory=list)

    Tree.model_rebuild()
    assert "recursive" in _error(Tree)


def test_a_set_list_of_objects_and_a_bad_map_key_are_refused() -> None:
    class Item(KubeModel):
        name: str
        note: str | None = None

    class SetOfObjects(KubeModel):
        items: Annotated[list[Item], ListType.set()] = Field(default_factory=list)

    class OptionalKey(KubeModel):
        items: Annotated[list[Item], ListType.map("note")] = Field(default_factory=list)

    class MissingKey(KubeModel):
        items: Annotated[list[Item], ListType.map("id")] = Field(default_factory=list)

    assert "SetOfObjects.items" in _error(SetOfObjects) and "scalar" in _error(SetOfObjects)
    assert "'note' must be required" in _error(OptionalKey)
    assert "'id' is not a field" in _error(MissingKey)


def test_an_unknown_format_is_refused() -> None:
    from kuar.resources import Format

    class Holder(KubeModel):
        addr: Annotated[str, Format("not-a-format")] = ""

    assert "Holder.addr" in _error(Holder) and "not-a-format" in _error(Holder)
