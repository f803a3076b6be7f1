"""Finalizer, status and decode-failure behaviour against the real kube-apiserver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kuar.client import (
    Client,
    Conflict,
    NotFound,
    ResourceInfo,
    apply_manifests,
    load_manifests,
    wait_crd_established,
)
from kuar.runtime import (
    InformerCache,
    ObjectKey,
    ObjectView,
    Request,
    Result,
    WatchConfig,
    add_finalizer,
    controller_for,
    finalizer,
    patch_status,
    update_status,
)

from .helpers import CM, create_cm, wait_for

pytestmark = pytest.mark.controlplane

CRD_FILE = Path(__file__).resolve().parents[3] / "examples" / "configmap_generator" / "crd.yaml"
GEN = ResourceInfo("examples.kuar.dev", "v1", "ConfigMapGenerator", "configmapgenerators", True)
FIN = "tests.kuar.dev/cleanup"


@pytest.fixture
async def gens(kube_client: Client, namespace: str) -> AsyncIterator[str]:
    await apply_manifests(kube_client, load_manifests(CRD_FILE))
    await wait_crd_established(kube_client, "configmapgenerators.examples.kuar.dev")
    async with asyncio.timeout(30):  # "storage is (re)initializing" for a moment
        while True:
            try:
                await kube_client.request("GET", GEN.path(namespace))
                break
            except Exception:
                await asyncio.sleep(0.1)
    yield namespace


async def create_gen(client: Client, ns: str, name: str) -> dict[str, Any]:
    body = {"apiVersion": "examples.kuar.dev/v1", "kind": "ConfigMapGenerator",
            "metadata": {"name": name}, "spec": {"data": {"a": "1"}}}
    result: dict[str, Any] = await client.request("POST", GEN.path(ns), body=body)
    return result


async def test_update_status_retries_on_conflict_and_skips_unchanged_writes(
    kube_client: Client, gens: str
) -> None:
    stale = await create_gen(kube_client, gens, "s1")
    await kube_client.request(  # someone else moves the object on
        "PATCH", GEN.path(gens, "s1"), body={"spec": {"data": {"a": "2"}}},
        content_type="application/merge-patch+json")
    calls = 0

    def mutate(obj: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        obj["status"]["configMapName"] = "x"

    written = await update_status(kube_client, GEN, ObjectKey(gens, "s1"), mutate,
                                  current=ObjectView(stale))
    assert calls == 2, "the stale write conflicted, was re-read and re-applied"
    assert written["status"]["configMapName"] == "x"
    assert written["spec"]["data"] == {"a": "2"}, "the other writer's change survived"
    again = await update_status(kube_client, GEN, ObjectKey(gens, "s1"), mutate)
    assert again["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"], \
        "an unchanged status is not written"


async def test_patch_status_merges_and_returns_the_object_as_served(
    kube_client: Client, gens: str
) -> None:
    await create_gen(kube_client, gens, "p1")
    first = await patch_status(kube_client, GEN, ObjectKey(gens, "p1"), {"configMapName": "a"})
    assert first["status"] == {"configMapName": "a"}
    assert first["spec"]["data"] == {"a": "1"}, "the whole object comes back, spec untouched"
    served = await kube_client.request("GET", GEN.path(gens, "p1"))
    assert first["metadata"]["resourceVersion"] == served["metadata"]["resourceVersion"]
    assert [m["manager"] for m in served["metadata"]["managedFields"]
            if m.get("subresource") == "status"] == ["kuar"], "written as field manager kuar"
    frozen = ObjectView({"configMapName": "b"})  # a read-only view is thawed before sending
    second = await patch_status(kube_client, GEN, ObjectKey(gens, "p1"), frozen)
    assert second["status"] == {"configMapName": "b"}
    with pytest.raises(NotFound):
        await patch_status(kube_client, GEN, ObjectKey(gens, "absent"), {"configMapName": "c"})


async def test_finalizer_runs_apply_then_cleanup_before_deletion(
    kube_client: Client, gens: str
) -> None:
    await create_gen(kube_client, gens, "f1")
    steps: list[str] = []

    async def read() -> ObjectView:
        return ObjectView(await kube_client.request("GET", GEN.path(gens, "f1")))

    async def apply() -> Result | None:
        steps.append("apply")
        return None

    cleanup_results = [Result.requeue(after=1), Result.done()]

    async def cleanup() -> Result | None:
        steps.append("cleanup")
        return cleanup_results.pop(0)

    obj = await read()
    await finalizer(kube_client, GEN, obj.metadata, FIN, apply=apply, cleanup=cleanup)
    obj = await read()
    assert FIN in obj.metadata.finalizers and steps == ["apply"]
    await finalizer(kube_client, GEN, obj.metadata, FIN, apply=apply, cleanup=cleanup)
    assert steps == ["apply", "apply"], "no second add"

    await kube_client.request("DELETE", GEN.path(gens, "f1"))
    obj = await read()  # held back by our finalizer
    assert obj.metadata.deletion_timestamp
    result = await finalizer(kube_client, GEN, obj.metadata, FIN, apply=apply, cleanup=cleanup)
    assert result.requeue_after == 1 and FIN in (await read()).metadata.finalizers, \
        "an unfinished cleanup keeps the finalizer"
    obj = await read()
    await finalizer(kube_client, GEN, obj.metadata, FIN, apply=apply, cleanup=cleanup)
    assert steps == ["apply", "apply", "cleanup", "cleanup"]
    with pytest.raises(NotFound):
        await read()


async def test_adding_a_finalizer_from_stale_metadata_conflicts(
    kube_client: Client, gens: str
) -> None:
    stale = ObjectView(await create_gen(kube_client, gens, "c1"))
    await kube_client.request(
        "PATCH", GEN.path(gens, "c1"), body={"metadata": {"labels": {"x": "y"}}},
        content_type="application/merge-patch+json")
    with pytest.raises(Conflict):
        await add_finalizer(kube_client, GEN, stale.metadata, FIN)


async def test_controller_skips_undecodable_objects_and_keeps_running(
    kube_client: Client, namespace: str
) -> None:
    def decode(raw: dict[str, Any]) -> ObjectView:
        if raw["metadata"]["name"].startswith("bad"):
            raise ValueError("bad input")
        return ObjectView(raw)

    registry = CollectorRegistry()
    cache = InformerCache(kube_client, registry=registry)
    seen: list[str] = []

    async def reconcile(req: Request) -> Result | None:
        seen.append(req.name)
        return None

    controller = (controller_for(CM, WatchConfig(namespace=namespace, label_selector="role=item"),
                                 cache=cache, decode=decode)
                  .with_registry(registry).build(reconcile))
    await create_cm(kube_client, namespace, "bad-1", labels={"role": "item"})
    await create_cm(kube_client, namespace, "good-1", labels={"role": "item"})
    async with cache:
        task = asyncio.ensure_future(controller.run())
        try:
            await wait_for(lambda: "good-1" in seen)
            await create_cm(kube_client, namespace, "bad-2", labels={"role": "item"})
            await create_cm(kube_client, namespace, "good-2", labels={"role": "item"})
            await wait_for(lambda: "good-2" in seen)
            assert not [n for n in seen if n.startswith("bad")]
            assert registry.get_sample_value(
                "kuar_decode_errors_total", {"resource": "configmaps"}) == 2
        finally:
            controller.stop()
            await asyncio.wait_for(task, 10)
