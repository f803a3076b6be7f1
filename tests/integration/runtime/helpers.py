"""Small helpers shared by the runtime's integration tests."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import Callable
from typing import Any

from kuar.client import AlreadyExists, Client, ResourceInfo
from kuar.runtime import InformerCache, Request, Result, WatchConfig, set_controller_reference

CM = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)
SECRET = ResourceInfo("", "v1", "Secret", "secrets", True)


async def create_cm(
    client: Client, ns: str, name: str, data: dict[str, str] | None = None, **meta: Any
) -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, **meta}, "data": data or {"k": name}}
    result: dict[str, Any] = await client.request("POST", CM.path(ns), body=body)
    return result


async def wait_for(check: Callable[[], Any], timeout: float = 20, interval: float = 0.05) -> Any:
    """Poll ``check`` (sync) until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while True:
            value = check()
            if value:
                return value
            await asyncio.sleep(interval)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def copier(client: Client, cache: InformerCache, namespace: str, seen: Counter[str]) -> Any:
    """Reconciler: keep a Secret '<cm>-child' holding the parent ConfigMap's data."""
    parents = cache.informer(CM, WatchConfig(namespace=namespace, label_selector="role=parent"))
    children = cache.informer(SECRET, WatchConfig(namespace=namespace))

    async def reconcile(req: Request) -> Result | None:
        seen[req.name] += 1
        parent = parents.store.get(req)
        if parent is None:
            return None  # deleted: the garbage collector removes the child
        want = {k: b64(v) for k, v in (parent.get("data") or {}).items()}
        name = f"{req.name}-child"
        child = children.store.get(Request(req.namespace, name))
        if child is not None and child.get("data") == want:
            return None
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret",
                                "metadata": {"name": name, "namespace": req.namespace},
                                "data": want}
        set_controller_reference(body, parent, CM)
        if child is None:
            try:
                await client.request("POST", SECRET.path(req.namespace), body=body)
            except AlreadyExists:
                return Result.requeue()  # cache is behind; look again soon
        else:
            body["metadata"]["resourceVersion"] = child.metadata.resource_version
            await client.request("PUT", SECRET.path(req.namespace, name), body=body)
        return None

    return reconcile
