"""Watch semantics of the real API server: event order, and 410 Gone after etcd compaction."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kuar.client import Client, Gone, load_config
from kuar.client.transport import MERGE_PATCH
from kuar.testing import ControlPlane, ControlPlaneSettings

CM = "/api/v1/namespaces/{ns}/configmaps"


async def _collect(client: Client, path: str, rv: str, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": 10}
    async for event in client.stream(path, params=params):
        events.append(event)
        if len(events) == count:
            break
    return events


async def test_watch_from_resource_version_sees_added_modified_deleted_in_order(
    kube_client: Client, namespace: str
) -> None:
    path = CM.format(ns=namespace)
    listed = await kube_client.request("GET", path)
    rv = listed["metadata"]["resourceVersion"]
    watch = asyncio.create_task(_collect(kube_client, path, rv, 3))
    await kube_client.request("POST", path, body={"metadata": {"name": "w"}, "data": {"a": "1"}})
    await kube_client.request(
        "PATCH", f"{path}/w", body={"data": {"a": "2"}}, content_type=MERGE_PATCH
    )
    await kube_client.request("DELETE", f"{path}/w")
    events = await asyncio.wait_for(watch, 15)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and int(rv) < versions[0]
    assert events[1]["object"]["data"] == {"a": "2"}


@pytest.fixture(scope="module")
def uncached_plane() -> Any:
    # Without the watch cache, watches are served by etcd, so compaction shows at once.
    with ControlPlane(ControlPlaneSettings(watch_cache=False)) as plane:
        yield plane


async def test_watch_from_compacted_resource_version_gets_410_gone(
    uncached_plane: ControlPlane,
) -> None:
    async with Client(await load_config(uncached_plane.kubeconfig)) as client:
        path = CM.format(ns="default")
        created = await client.request("POST", path, body={"metadata": {"name": "c"}})
        old_rv = created["metadata"]["resourceVersion"]
        for i in range(3):
            await client.request(
                "PATCH", f"{path}/c", body={"data": {"i": str(i)}}, content_type=MERGE_PATCH
            )
        # Before compaction, the old version still replays the modifications.
        replay = await _collect(client, path, old_rv, 1)
        assert replay[0]["type"] == "MODIFIED"

        revision = uncached_plane.compact()
        assert revision > int(old_rv)

        async def watch_once() -> dict[str, Any]:
            async for event in client.stream(
                path, params={"watch": "1", "resourceVersion": old_rv, "timeoutSeconds": 5}
            ):
                return event
            raise AssertionError("watch ended without an event")

        # The API server reports an expired version either as an HTTP 410 or as an ERROR
        # event carrying a Status with code 410; both mean "relist".
        try:
            event = await watch_once()
        except Gone:
            return
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410
