"""Runs examples/configmap_generator against the real control plane, as a separate process."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kuar.client import Client, NotFound, TooManyRequests

pytestmark = pytest.mark.controlplane

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "configmap_generator" / "main.py"
GENS = "/apis/examples.kuar.dev/v1/namespaces/{ns}/configmapgenerators"
CMS = "/api/v1/namespaces/{ns}/configmaps"


@pytest.fixture
async def example(kubeconfig: Path, namespace: str, tmp_path: Path) -> AsyncIterator[Path]:
    log_path = tmp_path / "example.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--kubeconfig", str(kubeconfig),
             "--namespace", namespace],
            stdout=log_file, stderr=subprocess.STDOUT,
        )
        try:
            yield log_path
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
            assert code == 0, f"example exited with {code}:\n{log_path.read_text()[-3000:]}"


async def get(client: Client, path: str) -> Any:
    try:
        return await client.request("GET", path)
    except NotFound:
        return None


async def eventually(check: Any, timeout: float = 30) -> Any:
    last: Any = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                last = await check()
                if last:
                    return last
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"still not true after {timeout}s (last: {last!r})") from None


async def test_configmap_generator_example(
    example: Path, kube_client: Client, namespace: str
) -> None:
    gens, cms = GENS.format(ns=namespace), CMS.format(ns=namespace)

    async def crd_ready() -> bool:
        try:
            await kube_client.request("GET", gens)
            return True
        except (NotFound, TooManyRequests):  # 429: "storage is (re)initializing"
            return False

    await eventually(crd_ready, timeout=60)
    body = {"apiVersion": "examples.kuar.dev/v1", "kind": "ConfigMapGenerator",
            "metadata": {"name": "g1"}, "spec": {"data": {"greeting": "hello"}}}
    await kube_client.request("POST", gens, body=body)

    async def child_with(data: dict[str, str]) -> Any:
        cm = await get(kube_client, f"{cms}/g1-generated")
        return cm if cm is not None and cm.get("data") == data else None

    child = await eventually(lambda: child_with({"greeting": "hello"}))
    [ref] = child["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("ConfigMapGenerator", "g1", True)

    async def ready(generation: int) -> Any:
        gen = await get(kube_client, f"{gens}/g1")
        status = (gen or {}).get("status") or {}
        conds = {c["type"]: c for c in status.get("conditions", [])}
        ok = (status.get("observedGeneration") == generation
              and conds.get("Ready", {}).get("status") == "True")
        return gen if ok else None

    gen = await eventually(lambda: ready(1))
    assert gen["status"]["configMapName"] == "g1-generated"
    assert "examples.kuar.dev/index-cleanup" in gen["metadata"]["finalizers"]
    index = await get(kube_client, f"{cms}/configmap-generator-index")
    assert index["data"] == {"g1": "g1-generated"}
    transition = gen["status"]["conditions"][0]["lastTransitionTime"]

    # a deleted child is recreated
    await kube_client.request("DELETE", f"{cms}/g1-generated")

    async def recreated() -> Any:
        cm = await child_with({"greeting": "hello"})
        return cm if cm and cm["metadata"]["uid"] != child["metadata"]["uid"] else None

    await eventually(recreated)

    # a spec change flows into the child and the status
    await kube_client.request(
        "PATCH", f"{gens}/g1", body={"spec": {"data": {"greeting": "bye"}}},
        content_type="application/merge-patch+json")
    await eventually(lambda: child_with({"greeting": "bye"}))
    gen = await eventually(lambda: ready(2))
    assert gen["status"]["conditions"][0]["lastTransitionTime"] == transition, \
        "Ready stayed True, so its lastTransitionTime did not move"

    # deletion runs the finalizer's cleanup, then the object goes away
    await kube_client.request("DELETE", f"{gens}/g1")

    async def gone() -> bool:
        return await get(kube_client, f"{gens}/g1") is None

    await eventually(gone)
    index = await get(kube_client, f"{cms}/configmap-generator-index")
    assert "g1" not in (index.get("data") or {})

    async def child_collected() -> bool:
        return await get(kube_client, f"{cms}/g1-generated") is None

    assert await child_collected(), "the finalizer's cleanup deleted the child"
    log = example.read_text()
    assert "reconcile_id=" in log and f"key={namespace}/g1" in log
