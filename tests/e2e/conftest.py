"""A local cluster for the LoadTest end-to-end tests: control plane, controller-manager,
scheduler, a local node, and the LoadTest webhooks with the two-version CRD.

It is this module's own cluster (not the session's) because the LoadTest CRD and the webhook
configurations are cluster-wide. Each test runs its own operator, limited to its namespace,
so tests can use different operator settings side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kuar.client import Client, load_config
from kuar.testing import ControlPlane, ControlPlaneSettings, eventually_async
from kuar.testing.localnode import LocalNode, LocalNodeSettings
from kuar.testing.process import Process
from kuar_loadtest.local import RESOLVE_ENV, loadgen_runner, local_runners, local_webhooks
from kuar_loadtest.operator import OperatorOptions, build_manager
from kuar_loadtest.settings import OperatorSettings
from kuar_loadtest.webhooks import LoadTestWebhookSettings

CRASHER_IMAGE = "kuar.dev/crasher"


def crasher_runner(container: Mapping[str, Any]) -> list[str]:
    """A load generator that crashes at once, the way a broken image would."""
    return [sys.executable, "-c",
            "import sys; print('loadgen: cannot start: boom', flush=True); sys.exit(3)"]


@dataclass
class Cluster:
    plane: ControlPlane
    client: Client
    node: LocalNode
    workdir: Path


@pytest.fixture(scope="module")
def e2e_plane() -> Iterator[ControlPlane]:
    with ControlPlane(ControlPlaneSettings(with_controller_manager=True,
                                           with_scheduler=True)) as plane:
        yield plane


@pytest.fixture(scope="module")
async def cluster(e2e_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[Cluster]:
    client = Client(await load_config(e2e_plane.kubeconfig))
    node = LocalNode(client, LocalNodeSettings(
        runners={**local_runners(),
                 CRASHER_IMAGE: dataclasses.replace(loadgen_runner, command=crasher_runner)},
        resolve_env=RESOLVE_ENV))
    await node.start()
    try:
        async with local_webhooks(client, LoadTestWebhookSettings(max_requests_per_second=20_000)):
            yield Cluster(e2e_plane, client, node, tmp_path_factory.mktemp("e2e"))
    finally:
        await node.stop()
        await client.close()


@pytest.fixture
async def ns(cluster: Cluster) -> AsyncIterator[str]:
    name = f"lt-{uuid.uuid4().hex[:8]}"
    await cluster.client.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    await eventually_async(lambda: cluster.client.request(
        "GET", f"/api/v1/namespaces/{name}/serviceaccounts/default"), timeout=30)
    yield name


@contextlib.asynccontextmanager
async def operator(cluster: Cluster, ns: str, **settings: Any) -> AsyncIterator[None]:
    """The LoadTest operator, limited to ``ns``."""
    manager = build_manager(cluster.client, OperatorOptions(
        settings=OperatorSettings(**{"allowed_endpoint_cidrs": (cluster.node.settings.pod_cidr,),
                                     **settings}),
        namespace=ns, health=None, handle_signals=False))
    running = asyncio.create_task(manager.run())
    try:
        yield
    finally:
        manager.stop()
        await asyncio.wait_for(running, 30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def publish(cluster: Cluster, ns: str, name: str, local_port: int, *,
                  port: int = 80, target_port: int = 8080) -> None:
    """A Service ``name`` in ``ns`` whose one endpoint is ``127.0.0.1:local_port``."""
    await cluster.node.publish(ns, name, local_port, port=port, target_port=target_port,
                               field_manager="e2e")


@contextlib.asynccontextmanager
async def target_service(cluster: Cluster, ns: str, name: str = "web", *,
                         latency_ms: float = 5, stall_at: float | None = None,
                         port: int | None = None) -> AsyncIterator[int]:
    """Run kuar_demo.service (plain HTTP) and publish it as Service ``name``; yields its port
    (a free one unless ``port`` is given; a second one replaces the Service's endpoint)."""
    port = port or _free_port()
    argv = [sys.executable, "-m", "kuar_demo.service", "--port", str(port),
            "--latency-ms", str(latency_ms)]
    if stall_at is not None:
        argv += ["--stall-at", str(stall_at), "--stall-for", "1"]
    async with published_process(cluster, ns, name, argv, port):
        yield port


@contextlib.asynccontextmanager
async def published_process(cluster: Cluster, ns: str, name: str, argv: list[str], port: int,
                            env: dict[str, str] | None = None) -> AsyncIterator[None]:
    """Run ``argv`` (a server on 127.0.0.1:``port``) and publish it as Service ``name``."""
    process = Process(f"svc-{ns}-{name}-{port}", argv, cluster.workdir, env=env)
    process.start()
    try:
        async def listening() -> None:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()

        await eventually_async(listening, timeout=20)
        await publish(cluster, ns, name, port)
        yield
    finally:
        await asyncio.to_thread(process.stop, 5.0)


def loadtest(name: str, **spec: Any) -> dict[str, Any]:
    body = {"service": "web", "scheme": "http", "requestsPerSecond": 200, "duration": "3s",
            "paths": ["/index.html", "/login.html"], **spec}
    return {"apiVersion": "beta.kuar.com/v1", "kind": "LoadTest", "metadata": {"name": name},
            "spec": body}


async def create(cluster: Cluster, ns: str, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = await cluster.client.request(
        "POST", f"/apis/beta.kuar.com/v1/namespaces/{ns}/loadtests", body=body)
    return created


async def wait_phase(cluster: Cluster, ns: str, name: str, *phases: str,
                     timeout: float = 90) -> dict[str, Any]:
    async def check() -> dict[str, Any]:
        lt: dict[str, Any] = await cluster.client.request(
            "GET", f"/apis/beta.kuar.com/v1/namespaces/{ns}/loadtests/{name}")
        phase = (lt.get("status") or {}).get("phase")
        assert phase in phases, (phase, lt.get("status"))
        return lt

    return await eventually_async(check, timeout=timeout, interval=0.25)
