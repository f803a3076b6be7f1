"""kube-controller-manager runs for real: Jobs get Pods, owners garbage-collect dependents."""

from __future__ import annotations

from typing import Any

from kuar.client import Client, NotFound
from kuar.testing import eventually_async


async def test_job_controller_creates_pods(kube_client: Client, namespace: str) -> None:
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "hello"},
        "spec": {
            "completions": 2,
            "parallelism": 2,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "example.invalid/hello:1"}],
                }
            },
        },
    }
    await kube_client.request("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", body=job)

    async def two_pods() -> None:
        pods = await kube_client.request(
            "GET", f"/api/v1/namespaces/{namespace}/pods",
            params={"labelSelector": "job-name=hello"},
        )
        assert len(pods["items"]) == 2
        owners = {o["kind"] for p in pods["items"] for o in p["metadata"]["ownerReferences"]}
        assert owners == {"Job"}

    await eventually_async(two_pods, timeout=30)


async def test_deleting_owner_garbage_collects_dependents(
    kube_client: Client, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    owner = await kube_client.request("POST", path, body={"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
           "uid": owner["metadata"]["uid"]}
    await kube_client.request(
        "POST", path, body={"metadata": {"name": "child", "ownerReferences": [ref]}}
    )
    await kube_client.request(
        "DELETE", f"{path}/owner", body={"propagationPolicy": "Background"}
    )

    async def child_gone() -> None:
        try:
            await kube_client.request("GET", f"{path}/child")
        except NotFound:
            return
        raise AssertionError("child still exists")

    await eventually_async(child_gone, timeout=30)
