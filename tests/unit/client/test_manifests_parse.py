"""Parsing manifests: every document checked before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuar.client.discovery import ResourceInfo, split_api_version
from kuar.client.manifests import ManifestError, load_manifests, parse_manifests


def test_multi_document_and_list_kinds_are_flattened() -> None:
    docs = parse_manifests(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n"
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n"
    )
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert names == [("ConfigMap", "a"), ("Secret", "b")]


def test_yaml_error_names_source_line_and_column() -> None:
    with pytest.raises(ManifestError, match=r"^f.yaml:3:\d+: invalid YAML"):
        parse_manifests("a: 1\nb: 2\nc: d: e\n", source="f.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- 1\n- 2\n", "document 1 is not a mapping"),
        ("kind: ConfigMap\nmetadata: {name: a}\n", "lacks apiVersion"),
        ("apiVersion: v1\nkind: ConfigMap\n", "lacks metadata.name"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 3}\n", "lacks metadata.name"),
    ],
)
def test_objects_missing_identity_are_rejected(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifests(text)


def test_missing_file_is_one_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"nope.yaml: no such file$"):
        load_manifests(tmp_path / "nope.yaml")


def test_resource_paths() -> None:
    core = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)
    assert core.path("ns", "x") == "/api/v1/namespaces/ns/configmaps/x"
    crd = ResourceInfo("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
                       "customresourcedefinitions", False)
    assert crd.path("ignored") == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    assert crd.api_version == "apiextensions.k8s.io/v1"
    assert split_api_version("v1") == ("", "v1")
    assert split_api_version("beta.kuar.com/v1") == ("beta.kuar.com", "v1")
