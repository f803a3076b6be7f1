"""The generated LoadTest CRD against the seed's CRD, field by field."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from kuar.resources import crd_for
from kuar_loadtest.api import LoadTest


def _seed(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (resources.files("kuar_loadtest") / "seed" / name).read_text())
    return data


def test_names_group_and_scope_match_the_seed() -> None:
    seed, ours = _seed("loadtest-crd.yaml"), crd_for(LoadTest)
    assert ours["apiVersion"] == seed["apiVersion"]
    assert ours["kind"] == seed["kind"]
    assert ours["metadata"]["name"] == seed["metadata"]["name"]
    assert ours["spec"]["group"] == seed["spec"]["group"]
    assert ours["spec"]["scope"] == seed["spec"]["scope"]
    for key, value in seed["spec"]["names"].items():
        assert ours["spec"]["names"][key] == value, key


def test_version_flags_match_the_seed() -> None:
    seed, ours = _seed("loadtest-crd.yaml"), crd_for(LoadTest)
    flags = [(v["name"], v["served"], v["storage"]) for v in seed["spec"]["versions"]]
    assert [(v["name"], v["served"], v["storage"]) for v in ours["spec"]["versions"]] == flags


def test_every_seed_spec_property_keeps_its_type() -> None:
    seed, ours = _seed("loadtest-crd.yaml"), crd_for(LoadTest)
    seed_spec = seed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    our_spec = ours["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert our_spec["type"] == seed_spec["type"] == "object"
    for name, prop in seed_spec["properties"].items():
        mine = our_spec["properties"][name]
        assert mine["type"] == prop["type"], name
        if "items" in prop:
            assert mine["items"]["type"] == prop["items"]["type"], name
    added = set(our_spec["properties"]) - set(seed_spec["properties"])
    assert added == {"port", "duration", "workers"}
    assert not added & set(our_spec.get("required", [])), "added fields must be optional"


def test_the_seed_object_decodes_unchanged() -> None:
    seed = _seed("my-loadtest.yaml")
    obj = LoadTest.decode(seed)
    encoded = obj.encode(exclude_unset=True)
    assert encoded == seed
