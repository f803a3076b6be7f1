"""The LoadTest extension on the real node, installed and used as a user would: kubectl only.

One real node (kubelet, containerd + runc, CNI bridge, kube-proxy, CoreDNS) for the whole
module, joined to this module's control plane; the project's images are built once with
``kuar image build`` and imported into containerd. The tests run in order on the same
install: install -> webhooks -> the seed's run -> leader loss -> kubelet restart -> uninstall.
Every object goes in with ``kubectl apply`` (``-k`` for the install trees, ``-f`` for the
seed's YAML), so the tests do not depend on the Python LoadTest types.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuar.testing import ControlPlane
from kuar.testing.realnode import RealNode, RealNodeSettings, image_archives, plane_settings
from kuar_demo.install import write_operator_overlay, write_target_overlay

pytestmark = [pytest.mark.controlplane, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "src" / "kuar_loadtest" / "seed" / "my-loadtest.yaml"
KUAR = Path(sys.executable).parent / "kuar"
SYSTEM = "kuar-system"
LEASE = "kuar-loadtest-operator"
TARGET_NAMES = ["my-service", "my-service.default", "my-service.default.svc",
                "my-service.default.svc.cluster.local"]


@dataclass
class Real:
    plane: ControlPlane
    node: RealNode
    images: Path
    work: Path

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self.plane.kubectl(), *args], input=stdin, capture_output=True,
                              text=True, timeout=timeout, check=False)
        if check:
            assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc

    def get(self, *args: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json").stdout)
        return loaded

    def crictl(self, *args: str) -> dict[str, Any]:
        proc = subprocess.run(self.node.crictl(*args), capture_output=True, text=True,
                              timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        loaded: dict[str, Any] = json.loads(proc.stdout)
        return loaded

    def wait_phase(self, name: str, phases: set[str], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        lt: dict[str, Any] = {}
        while time.monotonic() < deadline:
            lt = self.get("loadtest", name, "-n", "default")
            if (lt.get("status") or {}).get("phase") in phases:
                return lt
            time.sleep(1)
        raise AssertionError(f"{name} not in {phases} after {timeout:.0f} s: "
                             f"{lt.get('status')}")

    def leader(self) -> str:
        lease = self.get("lease", LEASE, "-n", SYSTEM)
        holder: str = lease["spec"].get("holderIdentity") or ""
        return holder


@pytest.fixture(scope="module")
def built_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("realnode-images")
    proc = subprocess.run([str(KUAR), "image", "build", "--project", str(ROOT),
                           "--output-dir", str(base / "out"), "--dist", str(base / "dist")],
                          capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stderr
    return base / "out"


@pytest.fixture(scope="module")
def real(built_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Real]:
    archives = image_archives(built_images)
    plane = ControlPlane(plane_settings())
    node = RealNode(plane, RealNodeSettings(images=archives))
    try:
        plane.start()
        node.start()
        print(f"\nreal node: start {node.times.total:.1f} s "
              f"({', '.join(f'{n} {s:.1f}' for n, s in node.times.steps)}); "
              f"RSS {sum(node.rss_kib().values()) / 1024:.0f} MiB {node.rss_kib()}")
        yield Real(plane, node, built_images, tmp_path_factory.mktemp("realnode"))
    finally:
        node.stop()
        plane.stop()


def seed(name: str, duration: str | None = None) -> str:
    lt = yaml.safe_load(SEED.read_text())
    lt["metadata"]["name"] = name
    if duration:
        lt["spec"]["duration"] = duration
    return yaml.safe_dump(lt)


def test_install_with_kubectl_apply_k(real: Real) -> None:
    overlay = write_operator_overlay(real.work / "install", real.images)
    started = time.monotonic()
    real.kubectl("apply", "-k", str(overlay))
    real.kubectl("-n", SYSTEM, "wait", "deployment/kuar-loadtest-operator",
                 "--for=condition=Available", "--timeout=240s", timeout=250)
    real.kubectl("-n", SYSTEM, "rollout", "status", "deployment/kuar-loadtest-operator",
                 "--timeout=240s", timeout=250)
    print(f"\nkubectl apply -k -> operator Available and rolled out: "
          f"{time.monotonic() - started:.1f} s")
    deployment = real.get("deployment", "kuar-loadtest-operator", "-n", SYSTEM)
    assert deployment["status"]["readyReplicas"] == 2
    pods = real.get("pods", "-n", SYSTEM, "-l", "app.kubernetes.io/name=kuar-loadtest-operator")
    names = {p["metadata"]["name"] for p in pods["items"]
             if p["status"].get("phase") == "Running"}
    assert len(names) == 2
    deadline = time.monotonic() + 60
    while not real.leader() and time.monotonic() < deadline:
        time.sleep(1)
    holder = real.leader()
    assert holder.split("_")[0] in names, (holder, names)  # exactly one holds the Lease
    # the operator runs from the image pinned by digest, as containers of the runtime
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    record = json.loads((real.images / "images.json").read_text())
    assert image.endswith(record["images"]["operator"]["digest"])
    listed = real.crictl("ps", "-o", "json", "--label", f"io.kubernetes.pod.namespace={SYSTEM}")
    assert len(listed["containers"]) == 2


def test_webhooks_through_the_service(real: Real) -> None:
    bad = yaml.safe_load(seed("too-fast"))
    bad["spec"]["requestsPerSecond"] = 60_000  # the schema allows it; the operator's cap not
    proc = real.kubectl("apply", "-n", "default", "-f", "-", stdin=yaml.safe_dump(bad),
                        check=False)
    assert proc.returncode != 0
    # the validating webhook's own message: the field and the operator's cap (50000), which
    # the CRD's schema does not know (its maximum is 1000000). The webhook sees the stored
    # version (v2; the API server converts the v1 write first), so it names the v2 field.
    assert "spec.load.requestsPerSecond" in proc.stderr, proc.stderr
    assert "must be at most 50000" in proc.stderr, proc.stderr
    assert real.get("loadtests", "-n", "default")["items"] == []


def test_seed_run_on_containers(real: Real) -> None:
    cert, key = real.node.issue_serving(TARGET_NAMES)
    target = write_target_overlay(real.work / "target", real.images, cert, key)
    real.kubectl("apply", "-k", str(target))
    real.kubectl("rollout", "status", "deployment/my-service", "--timeout=180s", timeout=190)
    real.kubectl("apply", "-n", "default", "-f", str(SEED))  # the seed's YAML, unchanged
    lt = real.wait_phase("my-loadtest", {"Running", "Succeeded", "Failed"}, 120)
    job = lt["status"]["jobName"]
    deadline = time.monotonic() + 60
    pods: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        pods = [p for p in real.get("pods", "-n", "default", "-l", f"job-name={job}")["items"]
                if p["status"].get("podIP") and p["status"].get("phase") == "Running"]
        if pods:
            break
        time.sleep(0.5)
    assert pods, "no running load pod"
    # the load pods are containers of the runtime, with addresses on the node's bridge
    sandboxes = real.crictl("pods", "-o", "json", "--namespace", "default", "--state", "ready")
    by_name = {s["metadata"]["name"]: s["id"] for s in sandboxes["items"]}
    for pod in pods:
        assert pod["status"]["podIP"].startswith("10.244.0."), pod["status"]
        sandbox = by_name[pod["metadata"]["name"]]
        inspected = real.crictl("inspectp", "-o", "json", sandbox)
        assert inspected["status"]["network"]["ip"] == pod["status"]["podIP"]
        containers = real.crictl("ps", "-o", "json", "--pod", sandbox)["containers"]
        assert [c["metadata"]["name"] for c in containers] == ["loadgen"], containers
    # ... and they find the target by its Service name (cluster DNS), not by address
    service_ip = real.get("service", "my-service", "-n", "default")["spec"]["clusterIP"]
    container = real.crictl("ps", "-o", "json", "--pod", by_name[pods[0]["metadata"]["name"]]
                            )["containers"][0]["id"]
    resolved = subprocess.run(real.node.crictl(
        "exec", container, "python3", "-c",
        "import socket; print(socket.gethostbyname('my-service.default.svc'))"),
        capture_output=True, text=True, timeout=60, check=False)
    assert resolved.stdout.strip() == service_ip, resolved.stderr
    final = real.wait_phase("my-loadtest", {"Succeeded", "Failed"}, 180)
    status = final["status"]
    assert status["phase"] == "Succeeded", status
    results = status["results"]
    print(f"\nseed run on the real node: achieved {results['achievedRps']:.1f} req/s, "
          f"p99 {results['latencyMs']['p99']:.1f} ms, errors {results['errors']}")
    assert abs(results["achievedRps"] - 1000) <= 20, results
    assert results["latencyMs"]["p99"] > 0
    # the stored v1 object, read as v2 through the conversion webhook (behind its Service)
    as_v2 = real.get("loadtests.v2.beta.kuar.com", "my-loadtest", "-n", "default")
    assert as_v2["apiVersion"] == "beta.kuar.com/v2"
    assert as_v2["metadata"]["name"] == "my-loadtest"


def _jobs_of(real: Real, name: str) -> list[str]:
    jobs = real.get("jobs", "-n", "default", "-l", f"kuar.dev/loadtest={name}")["items"]
    return [j["metadata"]["name"] for j in jobs]


def test_leader_pod_deleted_mid_run(real: Real) -> None:
    real.kubectl("apply", "-n", "default", "-f", "-", stdin=seed("leader-loss", "30s"))
    real.wait_phase("leader-loss", {"Running"}, 120)
    leader = real.leader()
    leader_pod = leader.split("_")[0]
    real.kubectl("delete", "pod", "-n", SYSTEM, leader_pod, "--wait=false")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        holder = real.leader()
        if holder and holder.split("_")[0] != leader_pod:
            break
        time.sleep(1)
    assert real.leader().split("_")[0] != leader_pod, "no other replica took the Lease"
    final = real.wait_phase("leader-loss", {"Succeeded", "Failed"}, 180)
    assert final["status"]["phase"] == "Succeeded", final["status"]
    assert final["status"].get("results"), final["status"]
    assert len(_jobs_of(real, "leader-loss")) == 1


def test_kubelet_killed_mid_run(real: Real) -> None:
    real.kubectl("apply", "-n", "default", "-f", "-", stdin=seed("kubelet-restart", "30s"))
    real.wait_phase("kubelet-restart", {"Running"}, 120)
    real.node.kill_kubelet()
    time.sleep(10)
    real.node.start_kubelet()
    final = real.wait_phase("kubelet-restart", {"Succeeded", "Failed"}, 300)
    status = final["status"]
    if status["phase"] == "Failed":
        assert status.get("message"), status  # failed with a reason, never Running forever
    print(f"\nkubelet killed for 10 s mid-run: {status['phase']} ({status.get('message')})")
    assert len(_jobs_of(real, "kubelet-restart")) == 1


def test_kubectl_delete_k_removes_everything(real: Real) -> None:
    real.kubectl("delete", "loadtests", "--all", "-n", "default", "--timeout=120s",
                 timeout=130)
    real.kubectl("delete", "-k", str(real.work / "target"), "--timeout=120s", timeout=130)
    real.kubectl("delete", "-k", str(real.work / "install"), "--timeout=180s", timeout=190)
    crds = real.kubectl("get", "crd", "-o", "name").stdout
    assert "loadtests.beta.kuar.com" not in crds
    assert real.kubectl("get", "namespace", SYSTEM, check=False).returncode != 0
    for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations",
                 "clusterroles", "clusterrolebindings"):
        assert "kuar-loadtest" not in real.kubectl("get", kind, "-o", "name").stdout, kind
    deadline = time.monotonic() + 120
    left: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        left = [c for c in real.crictl("ps", "-a", "-o", "json")["containers"]
                if c["labels"].get("io.kubernetes.pod.namespace") != "kube-system"]
        if not left:
            break
        time.sleep(1)
    assert left == [], [c["metadata"]["name"] for c in left]
