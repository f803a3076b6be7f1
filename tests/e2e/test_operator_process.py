"""``kuar loadtest run`` as a process, the way its pod runs it, against a real API server.

One process, one life: it starts as the operator's ServiceAccount without any RBAC rights
(logs in JSON on stderr from the first line, says which rights are missing, fails /readyz,
does not exit); once the generated RBAC is applied it starts by itself: its own CSR signer
signs its own serving certificate, the caBundle is injected, and the API server calls its
webhooks by URL (127.0.0.1) for admission and v1 <-> v2 conversion; SIGTERM then releases the
Lease and stops it well within a pod's grace period. No secret appears in its log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from kuar.client import Client, Invalid, apply_manifests, load_config
from kuar.testing import ControlPlane, ControlPlaneSettings, eventually_async
from kuar.webhook import UrlTarget, apply_configurations, webhook_configurations
from kuar_loadtest.local import install_crd, loadtest_crd, loadtestrun_crd
from kuar_loadtest.rbac import LEASE, OPERATOR
from kuar_loadtest.webhooks import build
from tests.operator_identity import token_kubeconfig

pytestmark = pytest.mark.controlplane

GRACE_PERIOD = 30.0  # deploy/operator/deployment.yaml's terminationGracePeriodSeconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with ControlPlane(ControlPlaneSettings()) as cp:
        yield cp


@pytest.fixture
async def admin(plane: ControlPlane) -> AsyncIterator[Client]:
    client = Client(await load_config(plane.kubeconfig))
    try:
        yield client
    finally:
        await client.close()


class Operator:
    """The child process; stderr in a file; stopped by its pid only."""

    def __init__(self, argv: list[str], workdir: Path) -> None:
        self.stderr = workdir / "operator.stderr"
        self.stdout = workdir / "operator.stdout"
        with self.stderr.open("wb") as err, self.stdout.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def records(self) -> list[dict[str, Any]]:
        """Every stderr line, each parsed as JSON (fails on a line that is not)."""
        return [json.loads(line) for line in self.stderr.read_text().splitlines()]

    def logged(self, text: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if text in r["msg"]]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


async def readyz(port: int) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{port}/readyz?verbose") as resp:
        return resp.status, await resp.text()


async def test_operator_process_rbac_readiness_webhooks_signer_and_sigterm(
    plane: ControlPlane, admin: Client, tmp_path: Path
) -> None:
    ns, name = OPERATOR.namespace, OPERATOR.name
    webhook_port, health_port, metrics_port = free_port(), free_port(), free_port()
    url = f"https://127.0.0.1:{webhook_port}"

    # The cluster side of the install, by URL: CRD (v2 storage, v1 by conversion) and the
    # webhook configurations, no caBundle yet; the ServiceAccount without any binding.
    await admin.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    await admin.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", body={
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
    await install_crd(admin, loadtest_crd(url))
    await install_crd(admin, loadtestrun_crd())
    validating, mutating, _ = build()
    await apply_configurations(admin, webhook_configurations([validating, mutating],
                                                             UrlTarget(base_url=url)))
    token = await token_kubeconfig(admin, plane, tmp_path / "operator.kubeconfig")

    operator = Operator([
        sys.executable, "-m", "kuar.cli", "loadtest", "run",
        "--kubeconfig", str(tmp_path / "operator.kubeconfig"), "--log-format", "json",
        "--leader-elect", "--lease-namespace", ns, "--max-rps", "1000",
        "--health-bind", f"127.0.0.1:{health_port}", "--metrics-bind", f"127.0.0.1:{metrics_port}",
        "--webhook-url", url, "--webhook-port", str(webhook_port), "--signer-namespace", ns,
        "--access-recheck", "1", "--drain-delay", "1"], tmp_path)
    try:
        # 1. Without rights: alive, not ready, and the log says which rights are missing.
        async def explains() -> None:
            assert operator.logged("required permissions")
            status, body = await readyz(health_port)
            assert status == 500 and "access failed: missing permissions" in body

        await eventually_async(explains, timeout=60)
        [missing] = operator.logged("required permissions")[:1]
        assert missing["level"] == "error"
        for right in ("list services", "create jobs.batch", "get leases.coordination.k8s.io",
                      "create certificatesigningrequests.certificates.k8s.io"):
            assert right in missing["msg"], missing["msg"]
        await asyncio.sleep(3)
        assert operator.proc.poll() is None, "exited instead of waiting for its rights"
        assert (await readyz(health_port))[0] == 500
        assert len(operator.logged("required permissions")) == 1  # logged once, not per check

        # 2. Grant the generated RBAC: the same process starts by itself and becomes ready.
        await apply_manifests(admin, OPERATOR.manifests(), field_manager="e2e")
        started = time.monotonic()

        async def ready() -> None:
            status, body = await readyz(health_port)
            assert status == 200, body

        await eventually_async(ready, timeout=90)
        became_ready = time.monotonic() - started
        assert operator.logged("all ")  # "all N required permissions granted"

        # its own signer signed its own CSR, and the CA is in the configurations and the CRD
        csrs = await admin.request("GET", "/apis/certificates.k8s.io/v1/certificatesigningrequests")
        mine = [c for c in csrs["items"] if c["spec"]["signerName"] == "kuar.dev/webhook-serving"]
        assert mine and all(c["status"].get("certificate") for c in mine)
        assert {c["spec"]["username"] for c in mine} == {f"system:serviceaccount:{ns}:{name}"}
        config = await admin.request("GET", "/apis/admissionregistration.k8s.io/v1/"
                                     "validatingwebhookconfigurations/kuar-validator")
        assert config["webhooks"][0]["clientConfig"].get("caBundle")

        # the API server calls the process: a denial, and a v1 object read as v2
        await admin.request("POST", "/api/v1/namespaces", body={
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "work"}})
        body = {"apiVersion": "beta.kuar.com/v1", "kind": "LoadTest",
                "metadata": {"name": "too-fast"},
                "spec": {"service": "web", "requestsPerSecond": 5000}}
        with pytest.raises(Invalid, match=r'admission webhook "validator\.kuar\.com" denied'):
            await admin.request("POST", "/apis/beta.kuar.com/v1/namespaces/work/loadtests",
                                body=body)
        body["metadata"]["name"], body["spec"]["requestsPerSecond"] = "ok", 100
        await admin.request("POST", "/apis/beta.kuar.com/v1/namespaces/work/loadtests", body=body)
        v2 = await admin.request("GET", "/apis/beta.kuar.com/v2/namespaces/work/loadtests/ok")
        assert v2["spec"]["load"]["requestsPerSecond"] == 100

        # it leads: the Lease names it, and the controller reconciled the LoadTest
        lease_path = f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{LEASE}"
        lease = await admin.request("GET", lease_path)
        assert lease["spec"]["holderIdentity"]

        async def reconciled() -> None:
            lt = await admin.request("GET", "/apis/beta.kuar.com/v1/namespaces/work/loadtests/ok")
            assert (lt.get("status") or {}).get("phase")

        await eventually_async(reconciled, timeout=30)
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
            assert "controller_runtime_webhook_requests_total" in await resp.text()

        # 3. SIGTERM: the Lease is released and the process exits within the grace period.
        sent = time.monotonic()
        os.kill(operator.proc.pid, signal.SIGTERM)
        code = await asyncio.to_thread(operator.proc.wait, GRACE_PERIOD)
        stopped = time.monotonic() - sent
        assert code == 0, operator.stderr.read_text()[-2000:]
        lease = await admin.request("GET", lease_path)
        assert lease["spec"].get("holderIdentity", "") == ""
        assert operator.logged("released lease")
        assert stopped < GRACE_PERIOD / 2

        # stderr is JSON from its first line to its last; stdout is empty; no secret leaked
        records = operator.records()
        assert records[0]["msg"].startswith("kuar-loadtest-operator ")
        assert records[-1]["msg"] == "stopped"
        text = operator.stderr.read_text()
        assert token not in text and "PRIVATE KEY" not in text
        assert operator.stdout.read_text() == ""
        print(f"\nready {became_ready:.1f} s after the RBAC was applied; "
              f"stopped {stopped:.2f} s after SIGTERM (drain delay 1 s)")
    finally:
        with contextlib.suppress(ProcessLookupError):
            operator.kill()


async def test_in_cluster_configuration_authenticates_as_the_service_account(
    plane: ControlPlane, admin: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pod's view: KUBERNETES_SERVICE_HOST/PORT, token and CA in files, no kubeconfig."""
    import base64

    from kuar.client import AlreadyExists, kubeconfig, whoami

    ns, name = OPERATOR.namespace, OPERATOR.name
    with contextlib.suppress(AlreadyExists):
        await admin.request("POST", "/api/v1/namespaces", body={
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    with contextlib.suppress(AlreadyExists):
        await admin.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", body={
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
    token = await token_kubeconfig(admin, plane, tmp_path / "unused.kubeconfig")
    cluster = yaml.safe_load(plane.kubeconfig.read_text())["clusters"][0]["cluster"]
    (tmp_path / "token").write_text(token)
    (tmp_path / "ca.crt").write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    (tmp_path / "namespace").write_text(ns)
    host, port = cluster["server"].removeprefix("https://").rsplit(":", 1)
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT", tmp_path)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    config = await load_config()
    assert config.namespace == ns
    client = Client(config)
    try:
        assert await whoami(client) == f"system:serviceaccount:{ns}:{name}"
    finally:
        await client.close()
