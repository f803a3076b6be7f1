"""The generated LoadTest CRD against the seed's CRD, field by field."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from kuar.resources import crds_for, find_resources


def _generated() -> dict[str, Any]:
    """The LoadTest CRD as ``kuar generate crds kuar_loadtest.api`` makes it (all versions)."""
    (crd,) = [c for c in crds_for(find_resources("kuar_loadtest.api"))
              if c["metadata"]["name"] == "loadtests.beta.kuar.com"]
    return crd


def _v1(crd: dict[str, Any]) -> dict[str, Any]:
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return v1


def _seed(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (resources.files("kuar_loadtest") / "seed" / name).read_text())
    return data


def test_names_group_and_scope_match_the_seed() -> None:
    seed, ours = _seed("loadtest-crd.yaml"), _generated()
    assert ours["apiVersion"] == seed["apiVersion"]
    assert ours["kind"] == seed["kind"]
    assert ours["metadata"]["name"] == seed["metadata"]["name"]
    assert ours["spec"]["group"] == seed["spec"]["group"]
    assert ours["spec"]["scope"] == seed["spec"]["scope"]
    for key, value in seed["spec"]["names"].items():
        assert ours["spec"]["names"][key] == value, key


def test_version_flags_match_the_seed() -> None:
    seed, ours = _seed("loadtest-crd.yaml"), _generated()
    (seed_v1,) = seed["spec"]["versions"]
    assert (seed_v1["name"], seed_v1["served"], seed_v1["storage"]) == ("v1", True, True)
    ours_v1 = _v1(ours)
    assert ours_v1["served"] is seed_v1["served"] is True
    # v1 stays served; storage moved to v2, the version with every field
    # (docs/decisions/0014-loadtest-storage-v2.md)
    assert [v["name"] for v in ours["spec"]["versions"] if v["storage"]] == ["v2"]


def test_every_seed_spec_property_keeps_its_type() -> None:
    seed, ours = _seed("loadtest-crd.yaml"), _generated()
    seed_spec = seed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    our_spec = _v1(ours)["schema"]["openAPIV3Schema"]["properties"]["spec"]
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
    from kuar_loadtest.api.v1 import LoadTest

    obj = LoadTest.decode(seed)
    encoded = obj.encode(exclude_unset=True)
    assert encoded == seed
