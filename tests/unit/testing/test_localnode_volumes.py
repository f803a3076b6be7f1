"""The local node's volume rules that need no API server: refusals, path rewriting, formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kuar.testing.localnode.volumes import (
    Mount,
    PathRewriter,
    Refused,
    container_mounts,
    field_ref,
    go_quote,
    plan_volumes,
    refresh_time,
)

ROOT = Path("/pods/ns/p-1234/_volumes")


@pytest.mark.parametrize(("volume", "named"), [
    ({"name": "host", "hostPath": {"path": "/etc"}}, "hostPath"),
    ({"name": "data", "persistentVolumeClaim": {"claimName": "c"}}, "persistentVolumeClaim"),
    ({"name": "csi", "csi": {"driver": "x"}}, "csi"),
    ({"name": "eph", "ephemeral": {}}, "ephemeral"),
    ({"name": "bundle", "projected": {"sources": [{"clusterTrustBundle": {"path": "b"}}]}},
     "clusterTrustBundle"),
    ({"name": "res", "downwardAPI": {"items": [
        {"path": "cpu", "resourceFieldRef": {"resource": "limits.cpu"}}]}}, "limits.cpu"),
    ({"name": "node", "downwardAPI": {"items": [
        {"path": "n", "fieldRef": {"fieldPath": "spec.nodeName"}}]}}, "spec.nodeName"),
])
def test_volumes_the_node_does_not_honour_refuse_the_pod_naming_them(
    volume: dict[str, Any], named: str
) -> None:
    spec = {"volumes": [{"name": "fine", "emptyDir": {}}, volume]}
    with pytest.raises(Refused) as refused:
        plan_volumes(spec, ROOT)
    assert refused.value.reason == "UnsupportedVolume"
    assert repr(volume["name"]) in refused.value.message
    assert named in refused.value.message


def test_honoured_volumes_get_a_folder_each_under_the_pods_volume_folder() -> None:
    spec = {"volumes": [
        {"name": "a", "configMap": {"name": "cm"}}, {"name": "b", "secret": {"secretName": "s"}},
        {"name": "c", "emptyDir": {"medium": "Memory"}},
        {"name": "d", "downwardAPI": {"items": [
            {"path": "l", "fieldRef": {"fieldPath": "metadata.labels['x']"}}]}},
        {"name": "e", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token"}}, {"configMap": {"name": "c"}},
            {"secret": {"name": "s"}}, {"downwardAPI": {"items": []}}]}},
    ]}
    assert plan_volumes(spec, ROOT) == {n: ROOT / n for n in "abcde"}


@pytest.mark.parametrize(("mount", "reason"), [
    ({"name": "v", "mountPath": "/"}, "ForbiddenPath"),
    ({"name": "v", "mountPath": "relative"}, "ForbiddenPath"),
    ({"name": "v", "mountPath": "/etc/../root"}, "ForbiddenPath"),
    ({"name": "v", "mountPath": "/etc/x", "subPath": "../../escape"}, "ForbiddenPath"),
    ({"name": "v", "mountPath": "/etc/x", "subPath": "/abs"}, "ForbiddenPath"),
    ({"name": "v", "mountPath": "/etc/x", "subPathExpr": "$(POD)"}, "UnsupportedVolume"),
    ({"name": "other", "mountPath": "/etc/x"}, "UnsupportedVolume"),
])
def test_mounts_outside_plain_paths_are_refused(mount: dict[str, Any], reason: str) -> None:
    with pytest.raises(Refused) as refused:
        container_mounts({"name": "c", "volumeMounts": [mount]}, {"v": ROOT / "v"})
    assert refused.value.reason == reason


def test_sub_path_mounts_a_file_of_the_volume() -> None:
    mounts = container_mounts({"name": "c", "volumeMounts": [
        {"name": "v", "mountPath": "/etc/app.json", "subPath": "conf/app.json"}]},
        {"v": ROOT / "v"})
    assert mounts == [Mount("/etc/app.json", ROOT / "v" / "conf" / "app.json")]


def test_mount_paths_are_rewritten_only_as_whole_paths_longest_first() -> None:
    rewrite = PathRewriter([Mount("/etc/a", Path("/L/a")), Mount("/etc/a/b", Path("/L/b"))])
    assert rewrite("/etc/a") == "/L/a"
    assert rewrite("--file=/etc/a/x.json") == "--file=/L/a/x.json"
    assert rewrite("/etc/a/b/c") == "/L/b/c"  # the nested mount wins
    assert rewrite("/etc/ab") == "/etc/ab"  # another path that starts the same
    assert rewrite("/x/etc/a") == "/x/etc/a"  # inside another path
    assert rewrite("a=/etc/a:/etc/a/b") == "a=/L/a:/L/b"
    assert PathRewriter([])("/etc/a") == "/etc/a"


def test_a_token_is_refreshed_at_80_percent_of_its_life_or_after_a_day() -> None:
    assert refresh_time(issued=1000.0, expires=1000.0 + 3600) == 1000.0 + 0.8 * 3600
    year = 365 * 24 * 3600.0
    assert refresh_time(issued=1000.0, expires=1000.0 + year) == 1000.0 + 24 * 3600


def test_label_and_annotation_files_use_gos_quoting_sorted() -> None:
    assert go_quote('say "hi"\n\\ é\x01') == '"say \\"hi\\"\\n\\\\ é\\x01"'
    pod = {"metadata": {"name": "p", "namespace": "n", "uid": "u",
                        "labels": {"b": "2", "a": "1"}, "annotations": {"k": "v w"}},
           "spec": {}}
    assert field_ref(pod, "metadata.labels") == 'a="1"\nb="2"'
    assert field_ref(pod, "metadata.annotations") == 'k="v w"'
    assert field_ref(pod, "metadata.labels['b']") == "2"
    assert field_ref(pod, "metadata.uid") == "u"
