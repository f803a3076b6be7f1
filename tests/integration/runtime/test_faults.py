"""Fault tests on private control planes: API server killed, silent network, etcd compaction.

Each test starts its own control plane (never the shared session one), breaks it, and checks
that the runtime recovers without losing an object.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kuar.client import ApiError, Client, NotFound, TransportError, load_config
from kuar.runtime import (
    ControllerSettings,
    InformerCache,
    Request,
    Result,
    WatchConfig,
    WatcherSettings,
    controller_for,
)
from kuar.testing import ControlPlane, ControlPlaneSettings

from .helpers import CM, SECRET, b64, copier, create_cm, wait_for
from .netfault import Relay

pytestmark = pytest.mark.controlplane
log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    """A private control plane (watch cache on, as in production) that tests may break."""
    cp = ControlPlane(ControlPlaneSettings())
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="module")
def plane_without_watch_cache() -> Iterator[ControlPlane]:
    """Watch cache off, so a watch from a compacted resourceVersion gets 410 at once."""
    cp = ControlPlane(ControlPlaneSettings(watch_cache=False))
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


async def client_for(cp: ControlPlane, server: str | None = None) -> Client:
    config = await load_config(cp.kubeconfig)
    if server is not None:
        config = dataclasses.replace(config, server=server)
    return Client(config)


async def make_namespace(client: Client, name: str) -> str:
    await client.request("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
    return name


async def retry(call: Any, timeout: float = 60) -> Any:
    """Retry ``call()`` while the API server is unreachable or not ready."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                return await call()
            except (TransportError, ApiError) as exc:
                if isinstance(exc, ApiError) and exc.code < 500 and exc.code != 429:
                    raise
                await asyncio.sleep(0.1)


@pytest.fixture
async def direct(plane: ControlPlane) -> AsyncIterator[Client]:
    client = await client_for(plane)
    yield client
    await client.close()


async def test_controller_resumes_after_apiserver_kill_and_loses_no_object(
    plane: ControlPlane, direct: Client
) -> None:
    ns = await make_namespace(direct, "kill-restart")
    controller_client = await client_for(plane)
    registry = CollectorRegistry()
    cache = InformerCache(controller_client, registry=registry)
    seen: Counter[str] = Counter()
    controller = (
        controller_for(CM, WatchConfig(namespace=ns, label_selector="role=parent"), cache=cache)
        .owns(SECRET)
        .with_settings(ControllerSettings(max_concurrent_reconciles=4))
        .with_registry(registry)
        .build(copier(controller_client, cache, ns, seen))
    )
    parents = {f"before-{i}" for i in range(15)}
    async with cache:
        task = asyncio.ensure_future(controller.run())
        try:
            for name in sorted(parents):
                await create_cm(direct, ns, name, {"a": name}, labels={"role": "parent"})
            children = cache.informer(SECRET, WatchConfig(namespace=ns))
            await wait_for(lambda: len(children.store) >= 15, timeout=60)

            # Kill kube-apiserver (etcd kept); create objects the moment it is back, while
            # the controller is still backing off, then more once everything is up.
            restart = asyncio.ensure_future(
                asyncio.to_thread(plane.restart_apiserver, kill=True, down_for=3.0))
            await asyncio.sleep(0.5)
            during = [f"during-{i}" for i in range(15)]
            for name in during:
                await retry(lambda name=name: create_cm(
                    direct, ns, name, {"a": name}, labels={"role": "parent"}))
            await restart
            parents.update(during)
            after = [f"after-{i}" for i in range(15)]
            for name in after:
                await create_cm(direct, ns, name, {"a": name}, labels={"role": "parent"})
            parents.update(after)

            def all_children_right() -> bool:
                for name in parents:
                    child = children.store.get(Request(ns, f"{name}-child"))
                    if child is None or child.get("data", {}).get("a") != b64(name):
                        return False
                return True

            await wait_for(all_children_right, timeout=90)
            # and the server agrees (not only the cache)
            listed = await direct.request("GET", SECRET.path(ns))
            names = {item["metadata"]["name"] for item in listed["items"]}
            assert {f"{p}-child" for p in parents} <= names
            assert set(seen) >= parents
            restarts = sum(
                registry.get_sample_value(
                    "kuar_watch_restarts_total", {"resource": "configmaps", "reason": r}) or 0
                for r in ("error", "closed", "gone", "inactive"))
            assert restarts >= 1, "the watch did notice the restart"
        finally:
            controller.stop()
            await asyncio.wait_for(task, 30)
    await controller_client.close()


async def test_watcher_detects_a_silent_stream_and_recovers(
    plane: ControlPlane, direct: Client
) -> None:
    ns = await make_namespace(direct, "silent")
    relay = await Relay(plane.server).start()
    client = await client_for(plane, relay.url)
    registry = CollectorRegistry()
    cache = InformerCache(client, settings=WatcherSettings(inactivity_timeout=1.5),
                          registry=registry)
    informer = cache.informer(CM, WatchConfig(namespace=ns))
    try:
        async with cache:
            await informer.wait_until_synced(20)
            relay.blackhole()  # the connection stays open but nothing gets through
            await create_cm(direct, ns, "while-silent")
            await wait_for(lambda: registry.get_sample_value(
                "kuar_watch_restarts_total", {"resource": "configmaps", "reason": "inactive"}),
                timeout=10)
            assert informer.store.get(Request(ns, "while-silent")) is None
            relay.heal()
            await wait_for(lambda: informer.store.get(Request(ns, "while-silent")), timeout=20)
            assert registry.get_sample_value(
                "kuar_watch_relists_total", {"resource": "configmaps"}) == 1, \
                "recovered by resuming the watch, not by relisting"
    finally:
        await relay.close()
        await client.close()


async def test_relist_after_compaction_keeps_the_store_exact_with_at_most_one_extra_reconcile(
    plane_without_watch_cache: ControlPlane,
) -> None:
    cp = plane_without_watch_cache
    direct = await client_for(cp)
    relay = await Relay(cp.server).start()
    client = await client_for(cp, relay.url)
    ns = await make_namespace(direct, "compaction")
    registry = CollectorRegistry()
    cache = InformerCache(client, registry=registry)
    counts: Counter[str] = Counter()
    items = cache.informer(CM, WatchConfig(namespace=ns, label_selector="role=item"))

    async def reconcile(req: Request) -> Result | None:
        counts[req.name] += 1
        return None

    controller = (
        controller_for(CM, WatchConfig(namespace=ns, label_selector="role=item"), cache=cache)
        .with_registry(registry).build(reconcile)
    )
    try:
        async with cache:
            task = asyncio.ensure_future(controller.run())
            for i in range(20):
                await create_cm(direct, ns, f"item-{i}", labels={"role": "item"})
            await wait_for(lambda: len(counts) == 20 and sum(counts.values()) == 20)

            relay.partition()  # the controller loses the API server; the world moves on
            for i in range(5):
                await direct.request(
                    "PATCH", CM.path(ns, f"item-{i}"), body={"data": {"k": "changed"}},
                    content_type="application/merge-patch+json")
            for i in range(5, 10):
                await direct.request("DELETE", CM.path(ns, f"item-{i}"))
            for i in range(5):
                await create_cm(direct, ns, f"new-{i}", labels={"role": "item"})
            for i in range(10):
                await create_cm(direct, ns, f"noise-{i}")
            await asyncio.to_thread(cp.compact)
            relay.heal()

            def store_matches(server: dict[str, str]) -> bool:
                cached = {o.name: o.metadata.resource_version for o in items.store.list()}
                return cached == server

            listed = await direct.request(
                "GET", CM.path(ns), params={"labelSelector": "role=item"})
            server = {i["metadata"]["name"]: i["metadata"]["resourceVersion"]
                      for i in listed["items"]}
            await wait_for(lambda: store_matches(server), timeout=60)
            await wait_for(lambda: sum(counts.values()) >= 35, timeout=10)
            await asyncio.sleep(0.5)  # let any (wrong) extra reconcile show up
            controller.stop()
            await asyncio.wait_for(task, 10)
        assert registry.get_sample_value(
            "kuar_watch_relists_total", {"resource": "configmaps"}) == 2, "exactly one relist"
        assert registry.get_sample_value(
            "kuar_watch_restarts_total", {"resource": "configmaps", "reason": "gone"}) == 1
        expected = {f"item-{i}": 1 for i in range(10, 20)}  # unchanged: no extra reconcile
        expected.update({f"item-{i}": 2 for i in range(10)})  # changed or deleted: one more
        expected.update({f"new-{i}": 1 for i in range(5)})
        assert dict(counts) == expected
        with pytest.raises(NotFound):
            await direct.request("GET", CM.path(ns, "item-5"))
    finally:
        await relay.close()
        await client.close()
        await direct.close()
