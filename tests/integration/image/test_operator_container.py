"""The operator image in podman (runc, host network, read-only root) against the local cluster.

Issue 10, item 5: the image built by ``kuar image build`` runs ``kuar loadtest run`` as the
operator's ServiceAccount (a token kubeconfig mounted read-only; the rights are exactly the
generated RBAC, ``kuar_loadtest.rbac``), with JSON logs, leader election, and the webhooks
served from the container on 127.0.0.1 (URL mode: the API server calls
``https://127.0.0.1:PORT``; the certificate comes from the CSR API and the operator's own
signer, the CA injected by the operator). It takes the seed's ``my-loadtest`` (unchanged but
for ``spec.duration``, a field the seed does not set, as ``kuar demo --duration`` does) to
Succeeded against the HTTPS demo service ``my-service``; the load pods run on kuar's local
process node (it runs ``kuar.dev/loadgen`` whatever the tag or digest). A webhook denial and
a v2 read (conversion) prove the API server reaches the container; ``podman stop`` (SIGTERM,
30 s like the pod's grace period) ends it with exit code 0 and the Lease released.

Everything listens on 127.0.0.1. The container, the podman storage, the node's processes and
the demo service are removed or stopped by this test, also after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from kuar.client import Client, Invalid, apply_manifests, load_config, parse_manifests
from kuar.testing import ControlPlane, ControlPlaneSettings, eventually_async
from kuar.testing.localnode import LocalNode, LocalNodeSettings
from kuar.webhook import UrlTarget, apply_configurations, webhook_configurations
from kuar_demo.run import NAMESPACE, SERVICE, DemoOptions, demo_service, seed_object
from kuar_loadtest.local import (
    RESOLVE_ENV,
    install_crd,
    loadgen_runner,
    loadtest_crd,
    loadtestrun_crd,
)
from kuar_loadtest.rbac import LEASE, OPERATOR
from kuar_loadtest.settings import LOADGEN_IMAGE
from kuar_loadtest.webhooks import build
from tests.integration.image.conftest import Built, Podman, free_port
from tests.operator_identity import token_kubeconfig

pytestmark = pytest.mark.controlplane

CONTAINER = "kuar-loadtest-operator"
DURATION = "10s"  # spec.duration, which the seed leaves to the 60 s default
RATE = 1000  # the seed's spec.requestsPerSecond
GRACE_PERIOD = 30  # deploy/operator/deployment.yaml's terminationGracePeriodSeconds
# deploy/operator/deployment.yaml's container, as podman flags: limits, no capabilities, no
# new privileges, read-only root with a 64 MiB /tmp (the pod's emptyDir)
POD_LIKE = ("--memory", "512m", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--tmpfs", "/tmp:rw,size=64m,mode=1777", "--env", "HOME=/tmp")


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with ControlPlane(ControlPlaneSettings(with_controller_manager=True,
                                           with_scheduler=True)) as cp:
        yield cp


@pytest.fixture
async def admin(plane: ControlPlane) -> AsyncIterator[Client]:
    client = Client(await load_config(plane.kubeconfig))
    try:
        yield client
    finally:
        await client.close()


async def install(admin: Client, url: str) -> None:
    """The cluster side, as deploy/default has it but by URL: namespace, ServiceAccount and
    the generated RBAC, the CRD (v2 storage, v1 through the conversion webhook at ``url``)
    and the two webhook configurations (no caBundle: the operator injects its CA)."""
    ns = OPERATOR.namespace
    await admin.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    await admin.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", body={
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": OPERATOR.name}})
    await apply_manifests(admin, OPERATOR.manifests(), field_manager="image-test")
    await install_crd(admin, loadtest_crd(url))
    await install_crd(admin, loadtestrun_crd())
    validating, mutating, _ = build()
    await apply_configurations(admin, webhook_configurations([validating, mutating],
                                                             UrlTarget(base_url=url)))


async def readyz(port: int) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{port}/readyz?verbose") as resp:
        return resp.status, await resp.text()


@contextlib.asynccontextmanager
async def running(podman: Podman, image: str, args: list[str], opts: tuple[str, ...]
                  ) -> AsyncIterator[None]:
    """The operator container; force-removed at the end (a no-op after a clean stop).

    ``podman run -d`` runs on the event loop's thread, not in a worker thread: a pytest
    timeout then kills the podman client instead of leaving it writing to the storage that the
    ``podman`` fixture is removing."""
    try:
        podman.start(CONTAINER, image, *args, opts=opts)
        yield
    finally:
        await asyncio.to_thread(podman, "rm", "--force", "--time", "1", CONTAINER)


def records(text: str) -> list[dict[str, Any]]:
    """The container's log, each line parsed as JSON (fails on a line that is not)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def test_operator_image_takes_the_seeds_my_loadtest_to_succeeded(
    built_images: Built, podman: Podman, plane: ControlPlane, admin: Client, tmp_path: Path
) -> None:
    webhook_port, health_port, metrics_port = free_port(), free_port(), free_port()
    url = f"https://127.0.0.1:{webhook_port}"
    await install(admin, url)
    await token_kubeconfig(admin, plane, tmp_path / "kubeconfig")
    (tmp_path / "kubeconfig").chmod(0o644)  # readable by the image's uid 65532 (bind mount)
    image = podman.load(built_images.archive("operator"))  # on this thread, see running()
    assert image == "kuar.dev/operator:0.1.0"
    # the Jobs name the load-worker image by digest, as images.env pins it; the local node
    # runs kuar.dev/loadgen whatever the tag or digest
    loadgen = built_images.image("loadgen")["reference"]
    assert loadgen.startswith(LOADGEN_IMAGE + "@sha256:")

    node = LocalNode(admin, LocalNodeSettings(
        runners={LOADGEN_IMAGE.rsplit(":", 1)[0]: loadgen_runner}, resolve_env=RESOLVE_ENV,
        root_dir=tmp_path))
    await node.start()
    try:
        # the seed's HTTPS my-service, published through the node exactly as `kuar demo` does;
        # its CA file is on this machine, where the node runs the workers, so the operator
        # hands them its path (--worker-ca-file)
        async with demo_service(admin, node, tmp_path, DemoOptions(latency_ms=1)) as ca_file:
            args = ["loadtest", "run", "--kubeconfig", "/etc/kuar/kubeconfig",
                    "--log-format", "json", "--leader-elect",
                    "--lease-namespace", OPERATOR.namespace,
                    "--health-bind", f"127.0.0.1:{health_port}",
                    "--metrics-bind", f"127.0.0.1:{metrics_port}",
                    "--webhook-url", url, "--webhook-bind", "127.0.0.1",
                    "--webhook-port", str(webhook_port),
                    "--signer-namespace", OPERATOR.namespace, "--drain-delay", "5",
                    "--image", loadgen, "--worker-ca-file", str(ca_file),
                    # my-service is published selector-less on the local node's pod range
                    "--allow-endpoint-cidr", node.settings.pod_cidr]
            opts = (*POD_LIKE, "-v", f"{tmp_path / 'kubeconfig'}:/etc/kuar/kubeconfig:ro,Z")
            started = time.monotonic()
            async with running(podman, image, args, opts):
                try:
                    await _exercise(podman, admin, started, health_port, metrics_port, loadgen)
                except BaseException:
                    print(podman.logs(CONTAINER)[-6000:])
                    raise
    finally:
        await node.stop()


async def _exercise(podman: Podman, admin: Client, started: float, health_port: int,
                    metrics_port: int, loadgen: str) -> None:
    container_started = time.monotonic() - started  # `podman run -d` returned

    # 1. ready: RBAC granted, caches synced, own CSR signed by its own signer, CA injected
    async def ready() -> None:
        state = await asyncio.to_thread(podman.state, CONTAINER)
        assert state["Running"], state
        status, body = await readyz(health_port)
        assert status == 200, body

    await eventually_async(ready, timeout=120, interval=0.25)
    time_to_ready = time.monotonic() - started
    config = await admin.request("GET", "/apis/admissionregistration.k8s.io/v1/"
                                 "validatingwebhookconfigurations/kuar-validator")
    assert config["webhooks"][0]["clientConfig"].get("caBundle")

    # 2. the API server calls the container's webhook: a bad LoadTest is denied (the
    # configurations fail open, so only an answer from the container can deny it)
    bad = {"apiVersion": "beta.kuar.com/v1", "kind": "LoadTest", "metadata": {"name": "bad"},
           "spec": {"service": "Not_A_Label", "requestsPerSecond": 10}}
    with pytest.raises(Invalid, match=r'admission webhook "validator\.kuar\.com" denied'):
        await admin.request("POST", f"/apis/beta.kuar.com/v1/namespaces/{NAMESPACE}/loadtests",
                            body=bad)

    # 3. the seed's my-loadtest, unchanged but for spec.duration (the demo's --duration)
    lt = seed_object("my-loadtest.yaml")
    assert lt["spec"]["service"] == SERVICE and lt["spec"]["requestsPerSecond"] == RATE
    assert "duration" not in lt["spec"]
    lt["spec"]["duration"] = DURATION
    await apply_manifests(admin, parse_manifests(yaml.safe_dump(lt)), namespace=NAMESPACE,
                          field_manager="image-test")
    path = f"/apis/beta.kuar.com/v1/namespaces/{NAMESPACE}/loadtests/my-loadtest"

    async def finished() -> dict[str, Any]:
        got: dict[str, Any] = await admin.request("GET", path)
        phase = (got.get("status") or {}).get("phase")
        assert phase in ("Succeeded", "Failed"), got.get("status")
        return got

    final = await eventually_async(finished, timeout=120, interval=0.5)
    status = final["status"]
    assert status["phase"] == "Succeeded", status
    results = status["results"]
    assert results["errors"] == 0, results
    assert abs(results["achievedRps"] - RATE) <= 0.02 * RATE, results
    v2 = await admin.request("GET", path.replace("/v1/", "/v2/"))  # conversion, in the container
    assert v2["spec"]["load"]["requestsPerSecond"] == RATE
    jobs = await admin.request("GET", f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs")
    [job] = jobs["items"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == loadgen
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
        assert "controller_runtime_webhook_requests_total" in await resp.text()

    # 4. SIGTERM with the pod's grace period: Lease released, webhooks drained, exit code 0
    lease_path = (f"/apis/coordination.k8s.io/v1/namespaces/{OPERATOR.namespace}/leases/"
                  f"{LEASE}")
    assert (await admin.request("GET", lease_path))["spec"]["holderIdentity"]
    sent = time.monotonic()
    stop = await asyncio.to_thread(podman, "stop", "--time", str(GRACE_PERIOD), CONTAINER,
                                   timeout=GRACE_PERIOD + 30)
    stopped = time.monotonic() - sent
    assert stop.returncode == 0, stop.stderr
    state = await asyncio.to_thread(podman.state, CONTAINER)
    logs = await asyncio.to_thread(podman.logs, CONTAINER)
    assert state["ExitCode"] == 0, logs[-4000:]
    assert stopped < GRACE_PERIOD, "podman had to kill it"
    lease = await admin.request("GET", lease_path)
    assert lease["spec"].get("holderIdentity", "") == ""
    lines = records(logs)  # JSON from the first line to the last
    assert lines[0]["msg"].startswith("kuar-loadtest-operator ")
    assert any("released lease" in r["msg"] for r in lines)
    assert lines[-1]["msg"] == "stopped"
    assert "PRIVATE KEY" not in logs

    latency = results["latencyMs"]
    print(f"\noperator image in podman+runc: container started {container_started:.1f} s, "
          f"ready {time_to_ready:.1f} s after `podman run`; my-loadtest ({DURATION} at "
          f"{RATE} req/s): {results['requests']} requests, {results['errors']} errors, "
          f"achieved {results['achievedRps']:.1f} req/s, p50 {latency['p50']:.1f} ms, "
          f"p99 {latency['p99']:.1f} ms; stopped {stopped:.1f} s after SIGTERM "
          f"(drain delay 5 s), exit code 0, Lease released")
