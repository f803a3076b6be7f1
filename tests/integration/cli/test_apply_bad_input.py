"""`kuar apply` with bad input: one clear line, a non-zero exit, nothing half applied."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kuar.client import Client, NotFound
from kuar.testing import ControlPlane


def _kuar(*args: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kuar.cli", *args, "--kubeconfig", str(kubeconfig)],
        capture_output=True, text=True, timeout=60, check=False,
    )


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr
    return lines[0]


async def _absent(client: Client, namespace: str, *names: str) -> None:
    for name in names:
        with pytest.raises(NotFound):
            await client.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")


def test_missing_file(tmp_path: Path, control_plane: ControlPlane) -> None:
    line = _one_error_line(
        _kuar("apply", "-f", str(tmp_path / "nope.yaml"), kubeconfig=control_plane.kubeconfig)
    )
    assert "nope.yaml: no such file" in line


async def test_malformed_yaml_names_file_and_line_and_applies_nothing(
    tmp_path: Path, control_plane: ControlPlane, kube_client: Client, namespace: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n"
    )
    line = _one_error_line(
        _kuar("apply", "-f", str(bad), "-n", namespace, kubeconfig=control_plane.kubeconfig)
    )
    assert f"{bad}:" in line and "invalid YAML" in line
    await _absent(kube_client, namespace, "first")


async def test_invalid_object_rejected_by_server_applies_nothing(
    tmp_path: Path, control_plane: ControlPlane, kube_client: Client, namespace: str
) -> None:
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good}\ndata: {a: '1'}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Not_A_Valid_Name}\n"
    )
    line = _one_error_line(
        _kuar("apply", "-f", str(mixed), "-n", namespace, kubeconfig=control_plane.kubeconfig)
    )
    assert "ConfigMap/Not_A_Valid_Name" in line
    await _absent(kube_client, namespace, "good")


async def test_unknown_kind_and_missing_name_apply_nothing(
    tmp_path: Path, control_plane: ControlPlane, kube_client: Client, namespace: str
) -> None:
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: before-unknown}\n---\n"
        "apiVersion: example.invalid/v1\nkind: Widget\nmetadata: {name: w}\n"
    )
    line = _one_error_line(
        _kuar("apply", "-f", str(unknown), "-n", namespace, kubeconfig=control_plane.kubeconfig)
    )
    assert 'Widget/w: the server has no resource for kind "Widget"' in line
    nameless = tmp_path / "nameless.yaml"
    nameless.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n")
    line = _one_error_line(
        _kuar("apply", "-f", str(nameless), "-n", namespace, kubeconfig=control_plane.kubeconfig)
    )
    assert "lacks metadata.name" in line
    await _absent(kube_client, namespace, "before-unknown")


async def test_valid_file_applies_every_object(
    tmp_path: Path, control_plane: ControlPlane, kube_client: Client, namespace: str
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\n"
    )
    proc = _kuar("apply", "-f", str(good), "-n", namespace, kubeconfig=control_plane.kubeconfig)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["configmap/one applied", "configmap/two applied"]
    for name in ("one", "two"):
        await kube_client.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")


def test_output_json_prints_the_applied_objects_as_a_list(
    tmp_path: Path, control_plane: ControlPlane, namespace: str
) -> None:
    good = tmp_path / "one.yaml"
    good.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: as-json}\n")
    proc = _kuar("apply", "-f", str(good), "-n", namespace, "-o", "json",
                 kubeconfig=control_plane.kubeconfig)
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert listed["kind"] == "List"
    assert [o["metadata"]["name"] for o in listed["items"]] == ["as-json"]
    assert listed["items"][0]["metadata"]["uid"]
