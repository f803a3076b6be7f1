"""The real node's configuration files: what this machine needs is in them (pure functions)."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import pytest

from kuar.testing.realnode import NodeError, image_archives
from kuar.testing.realnode.addons import coredns, kubernetes_endpoints, node_rbac
from kuar.testing.realnode.config import (
    Limits,
    base_spec,
    cni_conflist,
    containerd_toml,
    kube_proxy_config,
    kubelet_config,
)
from kuar.testing.realnode.node import host_rules


def test_limits_never_exceed_the_hard_limits() -> None:
    limits = Limits.within_hard_limits(nofile=10**9, nproc=10**9)
    for which, value in ((resource.RLIMIT_NOFILE, limits.nofile),
                         (resource.RLIMIT_NPROC, limits.nproc)):
        hard = resource.getrlimit(which)[1]
        assert hard == resource.RLIM_INFINITY or value <= hard
    assert Limits.within_hard_limits(nofile=64, nproc=32) == Limits(64, 32)


def test_base_spec_sets_every_rlimit_and_adds_the_mounts() -> None:
    default = {"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]},
               "mounts": [{"destination": "/proc"}]}
    mount = {"destination": "/etc/ssl/certs/ca-certificates.crt", "type": "bind",
             "source": "/x", "options": ["rbind", "ro"]}
    spec = base_spec(default, Limits(nofile=4096, nproc=2048), [mount])
    assert {r["type"]: (r["soft"], r["hard"]) for r in spec["process"]["rlimits"]} == {
        "RLIMIT_NOFILE": (4096, 4096), "RLIMIT_NPROC": (2048, 2048)}
    assert spec["mounts"] == [{"destination": "/proc"}, mount]
    assert default["mounts"] == [{"destination": "/proc"}]  # the input is not changed


def test_kubelet_config_for_cgroup_v1_without_registry(tmp_path: Path) -> None:
    conf = kubelet_config(socket=tmp_path / "c.sock", address="10.244.0.1", port=1,
                          healthz_port=2, cluster_dns="10.0.0.10",
                          resolv_conf=tmp_path / "resolv.conf", client_ca=tmp_path / "ca.crt",
                          pod_cidr="10.244.0.0/24")
    assert conf["failCgroupV1"] is False
    assert conf["cgroupDriver"] == "cgroupfs"
    assert conf["containerRuntimeEndpoint"] == f"unix://{tmp_path / 'c.sock'}"
    assert conf["healthzBindAddress"] == "127.0.0.1"
    assert conf["imageGCHighThresholdPercent"] == 100  # imported images are never collected
    assert conf["makeIPTablesUtilChains"] is False


def test_containerd_config_names_the_local_pause_image_and_runc(tmp_path: Path) -> None:
    text = containerd_toml(root=tmp_path / "root", state=tmp_path / "state",
                           socket=tmp_path / "c.sock", cni_conf_dir=tmp_path / "net.d",
                           cni_bin_dir=Path("/usr/lib/cni"), base_spec=tmp_path / "spec.json",
                           runc="/usr/sbin/runc", sandbox_image="kuar.dev/pause:1.0")
    for needle in ('sandbox_image = "kuar.dev/pause:1.0"', 'BinaryName = "/usr/sbin/runc"',
                   "SystemdCgroup = false", "restrict_oom_score_adj = true",
                   "netns_mounts_under_state_dir = true", f'base_runtime_spec = "{tmp_path}'):
        assert needle in text


def test_cni_masquerades_nothing_and_keeps_its_state_in_the_node(tmp_path: Path) -> None:
    conf = cni_conflist(bridge="kuarbr0", subnet="10.244.0.0/24", gateway="10.244.0.1",
                        ipam_dir=tmp_path)
    plugin = conf["plugins"][0]
    assert plugin["ipMasq"] is False
    assert plugin["ipam"]["dataDir"] == str(tmp_path)


def test_kube_proxy_keeps_node_ports_on_the_bridge(tmp_path: Path) -> None:
    conf = kube_proxy_config(kubeconfig=tmp_path / "k", hostname="n", cluster_cidr="10.244.0.0/24",
                             node_ip="10.244.0.1", healthz_port=1, metrics_port=2)
    assert conf["mode"] == "iptables"
    assert conf["nodePortAddresses"] == ["10.244.0.1/32"]
    assert conf["iptables"]["localhostNodePorts"] is False
    assert conf["conntrack"]["maxPerCore"] == 0


def test_host_rules_close_the_bridge_except_the_relay() -> None:
    rules = host_rules("kuarbr0")
    forward = [r for chain, r in rules if chain == "FORWARD"]
    assert all(r[-1] == "DROP" for r in forward) and len(forward) == 2
    inputs = [r for chain, r in rules if chain == "INPUT"]
    # inserted at the top one after another: the last inserted is evaluated first
    assert inputs[0][-1] == "DROP"
    assert "6443" in inputs[1] and inputs[1][-1] == "ACCEPT"


def test_addons_are_plain_manifests() -> None:
    objects = coredns("kuar.dev/coredns:1.15.0", "10.0.0.10")
    service = next(o for o in objects if o["kind"] == "Service")
    assert service["spec"]["clusterIP"] == "10.0.0.10"
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Never"
    assert kubernetes_endpoints("10.244.0.1", 6443)["ports"][0]["name"] == "https"
    assert [b["roleRef"]["name"] for b in node_rbac("system:node:n", "system:kube-proxy")] == [
        "system:node", "system:node-proxier"]


def test_image_archives_reads_images_json(tmp_path: Path) -> None:
    with pytest.raises(NodeError, match="make images"):
        image_archives(tmp_path)
    (tmp_path / "images.json").write_text(json.dumps({"version": 1, "images": {
        "operator": {"name": "kuar.dev/operator", "archive": "operator.oci.tar"}}}))
    assert image_archives(tmp_path) == ((tmp_path / "operator.oci.tar", "kuar.dev/operator"),)
