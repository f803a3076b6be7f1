"""The local node runs Pods that kube-scheduler binds to it, and reports like a kubelet."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from aiohttp import web

from kuar.client import Client, NotFound
from kuar.testing import eventually_async
from kuar.testing.localnode import CommandRunner, LocalNode, LocalNodeSettings
from tests.integration.testing.nodes import running_node

SH_IMAGE = "example.test/sh"
RESOLVE_ENV = "EXAMPLE_RESOLVE"


def sh_runner(container: Mapping[str, Any]) -> list[str]:
    return ["/bin/sh", "-c", container["args"][0]]


@pytest.fixture
async def node(kube_client: Client) -> AsyncIterator[LocalNode]:
    settings = LocalNodeSettings(
        name=f"node-{uuid.uuid4().hex[:8]}",
        runners={SH_IMAGE: CommandRunner(command=sh_runner,
                                  allowed_env=frozenset({"JOB_COMPLETION_INDEX"}))},
        resolve_env=RESOLVE_ENV,
    )
    async with running_node(kube_client, settings) as local:
        yield local


def _pod(node: LocalNode, name: str, image: str, script: str, **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image, "args": [script]}
    container.update(extra)
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.io/hostname": node.name},
            "terminationGracePeriodSeconds": 2,
            "containers": [container],
        },
    }


async def _create(client: Client, ns: str, pod: dict[str, Any]) -> None:
    await client.request("POST", f"/api/v1/namespaces/{ns}/pods", body=pod)


async def _wait_phase(client: Client, ns: str, name: str, phase: str) -> dict[str, Any]:
    async def check() -> dict[str, Any]:
        pod: dict[str, Any] = await client.request("GET", f"/api/v1/namespaces/{ns}/pods/{name}")
        assert pod.get("status", {}).get("phase") == phase, pod.get("status")
        return pod

    return await eventually_async(check, timeout=45, interval=0.2)


async def test_pod_runs_and_reports_exit_code_and_termination_message(
    kube_client: Client, namespace: str, node: LocalNode
) -> None:
    await _create(kube_client, namespace, _pod(
        node, "ok", SH_IMAGE, "printf '{\"ok\": 1}' > /dev/termination-log; exit 0"))
    await _create(kube_client, namespace, _pod(node, "bad", SH_IMAGE, "echo boom; exit 3",
                                               terminationMessagePolicy="FallbackToLogsOnError"))
    ok = await _wait_phase(kube_client, namespace, "ok", "Succeeded")
    assert ok["spec"]["nodeName"] == node.name  # bound by kube-scheduler
    assert ok["status"]["podIP"].startswith("10.244.0.")
    terminated = ok["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    assert json.loads(terminated["message"]) == {"ok": 1}

    bad = await _wait_phase(kube_client, namespace, "bad", "Failed")
    terminated = bad["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
    assert "boom" in terminated["message"]


async def test_unknown_image_fails_clearly(
    kube_client: Client, namespace: str, node: LocalNode
) -> None:
    await _create(kube_client, namespace, _pod(node, "nginx", "nginx:1.27", "true"))
    pod = await _wait_phase(kube_client, namespace, "nginx", "Failed")
    assert pod["status"]["reason"] == "UnsupportedImage"
    assert "cannot run nginx:1.27" in pod["status"]["message"]
    assert SH_IMAGE in pod["status"]["message"]


async def test_a_node_without_runners_fails_every_pod_naming_the_missing_runner(
    kube_client: Client, namespace: str
) -> None:
    bare = LocalNode(kube_client, LocalNodeSettings(name=f"bare-{uuid.uuid4().hex[:8]}"))
    await bare.start()
    try:
        await _create(kube_client, namespace, _pod(bare, "any", SH_IMAGE, "true"))
        pod = await _wait_phase(kube_client, namespace, "any", "Failed")
        assert pod["status"]["reason"] == "UnsupportedImage"
        assert "no runner configured" in pod["status"]["message"]
    finally:
        await bare.stop()
        await kube_client.request("DELETE", f"/api/v1/nodes/{bare.name}")


async def test_deleting_a_running_pod_stops_its_process(
    kube_client: Client, namespace: str, node: LocalNode
) -> None:
    await _create(kube_client, namespace, _pod(
        node, "sleeper", SH_IMAGE, "echo $$ > /dev/termination-log; exec sleep 120"))
    pod = await _wait_phase(kube_client, namespace, "sleeper", "Running")
    pid = int(pod["status"]["containerStatuses"][0]["containerID"].rsplit("/", 1)[1])
    os.kill(pid, 0)  # running
    await kube_client.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/sleeper")

    async def gone() -> None:
        try:
            await kube_client.request("GET", f"/api/v1/namespaces/{namespace}/pods/sleeper")
        except NotFound:
            return
        raise AssertionError("pod still exists")

    await eventually_async(gone, timeout=30)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_indexed_job_completes_with_downward_api_index(
    kube_client: Client, namespace: str, node: LocalNode
) -> None:
    template = _pod(node, "unused", SH_IMAGE,
                    "printf \"index=$JOB_COMPLETION_INDEX\" > /dev/termination-log")
    job = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "idx"},
        "spec": {"completions": 2, "parallelism": 2, "completionMode": "Indexed",
                 "template": {"spec": template["spec"]}},
    }
    await kube_client.request("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", body=job)

    async def complete() -> None:
        got = await kube_client.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/idx")
        assert got.get("status", {}).get("succeeded") == 2, got.get("status")

    await eventually_async(complete, timeout=60, interval=0.3)
    pods = await kube_client.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods", params={"labelSelector": "job-name=idx"}
    )
    messages = sorted(
        p["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
        for p in pods["items"]
    )
    assert messages == ["index=0", "index=1"]


async def test_service_names_resolve_to_local_endpoints(
    kube_client: Client, namespace: str, node: LocalNode
) -> None:
    app = web.Application()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        local_port = runner.addresses[0][1]
        address = node.allocate_address()
        node.expose(address, 8080, local_port)
        await kube_client.request("POST", f"/api/v1/namespaces/{namespace}/services", body={
            "metadata": {"name": "web"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        })
        await kube_client.request(
            "POST", f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices", body={
                "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            })
        await _create(kube_client, namespace, _pod(
            node, "dns", SH_IMAGE, f"printf '%s' \"${RESOLVE_ENV}\" > /dev/termination-log"))
        pod = await _wait_phase(kube_client, namespace, "dns", "Succeeded")
        terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        mapping = json.loads(terminated["message"])
        expected = f"127.0.0.1:{local_port}"
        for host in ("web", f"web.{namespace}", f"web.{namespace}.svc",
                     f"web.{namespace}.svc.cluster.local"):
            assert mapping[f"{host}:80"] == expected
    finally:
        await runner.cleanup()
        await asyncio.sleep(0)
