"""The transport on the real API server over TLS: a watch the server ends, a big body, reuse."""

from __future__ import annotations

import asyncio
import time

import pytest

from kuar.client import Api, Client
from kuar.models.core.v1 import ConfigMap
from kuar.resources import ObjectMeta

pytestmark = pytest.mark.controlplane


async def test_watch_ended_by_timeout_seconds_ends_cleanly(kube_client: Client,
                                                            namespace: str) -> None:
    cms = Api(kube_client, ConfigMap, namespace=namespace)
    await cms.create(ConfigMap(metadata=ObjectMeta(name="seen"), data={"a": "1"}))
    listed = await cms.list()
    started = time.monotonic()
    events = []
    async with asyncio.timeout(30):
        async for event in cms.watch(resource_version="0", timeout_seconds=1):
            events.append(event)
    assert time.monotonic() - started < 20
    assert any(e.object.metadata.name == "seen" for e in events)
    # the connection the server ended cleanly serves the next requests
    assert [c.metadata.name for c in (await cms.list()).items] == \
        [c.metadata.name for c in listed.items]


async def test_a_large_body_round_trips_over_tls(kube_client: Client, namespace: str) -> None:
    cms = Api(kube_client, ConfigMap, namespace=namespace)
    data = {f"k{i}": "v" * 4096 for i in range(200)}  # ~800 KiB each way
    await cms.create(ConfigMap(metadata=ObjectMeta(name="big"), data=data))
    assert (await cms.get("big")).data == data
