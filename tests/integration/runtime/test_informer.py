"""Watcher, store and informer cache against the real kube-apiserver."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kuar.client import Client
from kuar.runtime import Change, InformerCache, ObjectKey, ObjectView, WatchConfig

from .helpers import CM, create_cm, wait_for

pytestmark = pytest.mark.controlplane


async def test_informer_lists_existing_objects_then_follows_changes(
    kube_client: Client, namespace: str
) -> None:
    for i in range(5):
        await create_cm(kube_client, namespace, f"before-{i}")
    cache = InformerCache(kube_client)
    informer = cache.informer(CM, WatchConfig(namespace=namespace))
    changes: list[Change[ObjectView]] = []
    informer.add_handler(changes.append)
    async with cache:
        await informer.wait_until_synced(10)
        store = informer.store
        assert {o.name for o in store.list()} >= {f"before-{i}" for i in range(5)}
        await create_cm(kube_client, namespace, "after")
        await kube_client.request(
            "PATCH", CM.path(namespace, "before-0"), body={"data": {"k": "changed"}},
            content_type="application/merge-patch+json",
        )
        await kube_client.request("DELETE", CM.path(namespace, "before-1"))
        await wait_for(lambda: store.get(ObjectKey(namespace, "after")) is not None
                       and store.get(ObjectKey(namespace, "before-1")) is None
                       and store.get(f"{namespace}/before-0")["data"]["k"] == "changed")
    by_name = {(c.type, c.key.name) for c in changes}
    assert ("added", "before-0") in by_name, "existing objects are reported as added"
    assert {("added", "after"), ("modified", "before-0"), ("deleted", "before-1")} <= by_name
    obj = store.get(ObjectKey(namespace, "after"))
    assert obj is not None and obj.kind == "ConfigMap" and obj.metadata.uid
    assert "managedFields" not in obj["metadata"], "the default transform strips managedFields"
    with pytest.raises(TypeError):
        obj["data"]["k"] = "x"  # handed out read-only


async def test_informer_scopes_by_namespace_and_label_selector(
    kube_client: Client, namespace: str
) -> None:
    other = f"{namespace}-o"
    await kube_client.request("POST", "/api/v1/namespaces",
                              body={"metadata": {"name": other}})
    try:
        await create_cm(kube_client, namespace, "match", labels={"app": "web"})
        await create_cm(kube_client, namespace, "nomatch", labels={"app": "db"})
        await create_cm(kube_client, other, "elsewhere", labels={"app": "web"})
        cache = InformerCache(kube_client)
        scoped = cache.informer(CM, WatchConfig(namespace=namespace, label_selector="app=web"))
        everywhere = cache.informer(CM, WatchConfig(label_selector="app=web"))
        async with cache:
            await cache.wait_until_synced(10)
            assert [o.name for o in scoped.store.list()] == ["match"]
            names = {(o.namespace, o.name) for o in everywhere.store.list()}
            assert {(namespace, "match"), (other, "elsewhere")} <= names
            assert (namespace, "nomatch") not in names
            assert everywhere.store.list(other)[0].name == "elsewhere", "namespace index"
    finally:
        await kube_client.request("DELETE", f"/api/v1/namespaces/{other}")


async def test_informer_cache_shares_one_informer_per_kind_and_scope(
    kube_client: Client, namespace: str
) -> None:
    cache = InformerCache(kube_client)
    a = cache.informer(CM, WatchConfig(namespace=namespace))
    b = cache.informer(CM, WatchConfig(namespace=namespace))
    c = cache.informer(CM, WatchConfig(namespace=namespace, label_selector="x=y"))
    assert a is b and a is not c
    with pytest.raises(ValueError, match="decode"):
        cache.informer(CM, WatchConfig(namespace=namespace), decode=lambda raw: raw)
    late_changes: list[Any] = []
    async with cache:
        await create_cm(kube_client, namespace, "one")
        await wait_for(lambda: a.store.get(f"{namespace}/one") is not None)
        # a handler added late still hears about every cached object
        a.add_handler(late_changes.append)
        assert sorted(ch.key.name for ch in late_changes) == sorted(
            o.name for o in a.store.list()
        )
        assert "one" in {ch.key.name for ch in late_changes}
        d = cache.informer(CM, WatchConfig(namespace=f"{namespace}-none"))
        await asyncio.wait_for(d.wait_until_synced(), 10)  # informers made later start too


async def test_cached_objects_round_trip_in_their_stored_form_and_opt_outs_keep_fields(
    kube_client: Client, namespace: str
) -> None:
    """Records for views, packed metadata beside typed objects, both equal to what was served.

    ``transform=None`` keeps managedFields; ``records=False`` keeps interned dicts.
    """
    from kuar.models.core.v1 import ConfigMap
    from kuar.runtime import WatcherSettings, thaw
    from kuar.runtime.objects import Record

    served = [await create_cm(kube_client, namespace, f"rt-{i}", {"k": str(i)},
                              labels={"app": "shop"}) for i in range(4)]
    for body in served:
        assert body["metadata"]["managedFields"], "the server sends managedFields"
    stripped = {b["metadata"]["name"]: {**b, "metadata": {
        k: v for k, v in b["metadata"].items() if k != "managedFields"}} for b in served}
    ours = {"namespace": namespace, "label_selector": "app=shop"}
    variants = [  # (settings, config, typed)
        (WatcherSettings(), WatchConfig(**ours), False),
        (WatcherSettings(), WatchConfig(**ours), True),
        (WatcherSettings(records=False), WatchConfig(**ours), False),
        (WatcherSettings(), WatchConfig(**ours, transform=None), False),
        (WatcherSettings(), WatchConfig(**ours, transform=None), True),
    ]
    for settings, config, typed in variants:
        cache = InformerCache(kube_client, settings=settings)
        informer = cache.informer(ConfigMap if typed else CM, config)  # type: ignore[call-overload]
        async with cache:
            await informer.wait_until_synced(10)
            store = informer.store
            assert len(store) == 4
            kinds = set()
            for key in store.keys():  # noqa: SIM118 (Store.keys is a snapshot list)
                entry = store.cached(key)
                assert entry is not None
                want = stripped[key.name]
                kinds.add(type(entry.meta._data))
                if typed:
                    obj: Any = entry.object
                    assert isinstance(obj, ConfigMap) and obj.data == want["data"]
                    encoded = obj.encode()
                    if config.transform is None:
                        assert encoded["metadata"]["managedFields"], "opt-out keeps them"
                        encoded["metadata"].pop("managedFields")
                    else:
                        assert obj.metadata.managed_fields is None
                    assert encoded == want, "a stripped typed object round-trips"
                else:
                    view = entry.object
                    got = thaw(view)
                    assert view == got and got == view
                    if config.transform is None:
                        assert got["metadata"].pop("managedFields"), "opt-out keeps them"
                    assert got == want
                assert entry.meta.uid == want["metadata"]["uid"]
                assert entry.meta.labels == {"app": "shop"}
            # four objects of one shape: from the second one on, records (unless turned off)
            if settings.records:
                assert Record in kinds
            else:
                assert kinds == {dict}
