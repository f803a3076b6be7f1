"""A controller built with the builder, against the real kube-apiserver."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kuar.client import Client, NotFound
from kuar.runtime import ControllerSettings, InformerCache, Request, WatchConfig, controller_for

from .helpers import CM, SECRET, b64, copier, create_cm, wait_for

pytestmark = pytest.mark.controlplane


async def test_controller_keeps_owned_children_and_reacts_to_watched_objects(
    kube_client: Client, namespace: str
) -> None:
    cache = InformerCache(kube_client)
    seen: Counter[str] = Counter()
    registry = CollectorRegistry()

    def trigger_to_parent(obj: Any) -> list[Request]:
        target = obj.metadata.labels.get("trigger-for")
        return [Request(obj.namespace, target)] if target else []

    controller = (
        controller_for(CM, WatchConfig(namespace=namespace, label_selector="role=parent"),
                       cache=cache)
        .owns(SECRET)
        .watches(CM, trigger_to_parent, WatchConfig(label_selector="trigger-for"))
        .named("copier")
        .with_settings(ControllerSettings(max_concurrent_reconciles=4))
        .with_registry(registry)
        .build(copier(kube_client, cache, namespace, seen))
    )
    async with cache:
        task = asyncio.ensure_future(controller.run())
        try:
            await create_cm(kube_client, namespace, "p1", {"a": "1"}, labels={"role": "parent"})
            await create_cm(kube_client, namespace, "unrelated", {"a": "1"})

            async def child() -> dict[str, Any] | None:
                try:
                    result: dict[str, Any] = await kube_client.request(
                        "GET", SECRET.path(namespace, "p1-child"))
                    return result
                except NotFound:
                    return None

            async def child_has(value: str) -> bool:
                found = await child()
                return found is not None and found.get("data", {}).get("a") == b64(value)

            await _eventually(lambda: child_has("1"))
            created = await child()
            assert created is not None
            [ref] = created["metadata"]["ownerReferences"]
            assert (ref["kind"], ref["name"], ref["controller"]) == ("ConfigMap", "p1", True)

            # a deleted child is recreated: a change of an owned object wakes its owner
            await kube_client.request("DELETE", SECRET.path(namespace, "p1-child"))
            await _eventually(
                lambda: _recreated(child, created["metadata"]["uid"]), timeout=20)

            # a change of the parent flows into the child
            await kube_client.request(
                "PATCH", CM.path(namespace, "p1"), body={"data": {"a": "2"}},
                content_type="application/merge-patch+json")
            await _eventually(lambda: child_has("2"))

            # a watched object mapped to the parent triggers a reconcile of the parent
            before = seen["p1"]
            await create_cm(kube_client, namespace, "t1", labels={"trigger-for": "p1"})
            await wait_for(lambda: seen["p1"] > before)
            assert "unrelated" not in seen and "t1" not in seen
            assert registry.get_sample_value(
                "controller_runtime_reconcile_total",
                {"controller": "copier", "result": "success"}) >= 3
            assert registry.get_sample_value(
                "workqueue_adds_total", {"name": "copier", "controller": "copier"}) >= 3
        finally:
            controller.stop()
            await asyncio.wait_for(task, 10)


async def _recreated(child: Any, old_uid: str) -> bool:
    found = await child()
    return found is not None and found["metadata"]["uid"] != old_uid


async def _eventually(check: Any, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)
