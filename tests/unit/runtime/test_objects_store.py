"""Read-only object views, compaction, and the store's relist, index and change semantics."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from kuar.runtime import (
    EventType,
    FrozenDict,
    MetaView,
    ObjectKey,
    ObjectView,
    Store,
    WatchEvent,
    thaw,
)
from kuar.runtime.objects import compact, strip_managed_fields


def obj(name: str, rv: str = "1", ns: str = "ns", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": rv, "uid": f"u-{name}",
                     **meta},
        "data": {"k": "v"},
    }


def ev(kind: EventType, raw: dict[str, Any] | None = None, rv: str = "") -> WatchEvent[Any]:
    if raw is None:
        return WatchEvent(kind, None, None, rv)
    meta = MetaView(raw["metadata"])
    return WatchEvent(kind, ObjectView(raw), meta, meta.resource_version)


def test_views_are_read_only_all_the_way_down() -> None:
    view = ObjectView(
        {"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"l": [{"a": 1}]}}
    )
    with pytest.raises(TypeError):
        view["spec"] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        view.metadata.labels["x"] = "2"  # type: ignore[index]
    nested = view["spec"]["l"][0]
    assert isinstance(nested, FrozenDict)
    with pytest.raises(TypeError):
        nested["a"] = 2  # type: ignore[index]
    assert not hasattr(view["spec"]["l"], "append")


def test_thaw_returns_an_independent_mutable_copy() -> None:
    raw = {"metadata": {"name": "a"}, "spec": {"l": [1, {"b": 2}]}}
    view = ObjectView(raw)
    copy = view.thaw()
    copy["spec"]["l"][1]["b"] = 3
    assert raw["spec"]["l"][1]["b"] == 2
    assert json.dumps(thaw(view["spec"])) == '{"l": [1, {"b": 2}]}'
    assert view == raw and view["spec"] == {"l": [1, {"b": 2}]}


def test_object_accessors() -> None:
    view = ObjectView(obj("a", generation=3, labels={"l": "1"}, finalizers=["f"],
                             ownerReferences=[{"uid": "o", "controller": True, "kind": "X"}]))
    assert view.key == ObjectKey("ns", "a") and str(view.key) == "ns/a"
    meta = view.metadata
    assert (meta.generation, meta.uid, meta.resource_version) == (3, "u-a", "1")
    assert meta.labels == {"l": "1"} and meta.finalizers == ("f",)
    ref = meta.controller_reference()
    assert ref is not None and ref["uid"] == "o"
    assert view.path("metadata", "ownerReferences", 0, "kind") == "X"
    assert view.path("status", "missing", default=7) == 7
    assert ObjectKey.parse("ns/a") == ObjectKey("ns", "a")
    assert ObjectKey.parse("cluster-thing") == ObjectKey("", "cluster-thing")


def test_compact_interns_keys_and_short_strings_and_strip_drops_managed_fields() -> None:
    a = json.loads(json.dumps(obj("a", managedFields=[{"manager": "kubectl"}])))
    b = json.loads(json.dumps(obj("b")))
    a, b = compact(strip_managed_fields(a)), compact(b)
    assert "managedFields" not in a["metadata"]
    key_a = next(k for k in a["metadata"] if k == "namespace")
    key_b = next(k for k in b["metadata"] if k == "namespace")
    assert key_a is key_b
    assert a["metadata"]["namespace"] is b["metadata"]["namespace"]
    assert a == json.loads(json.dumps(a)), "compaction keeps the content"


def names(store: Store[Any]) -> list[str]:
    return sorted(o.name for o in store.list())


def test_store_applies_adds_updates_deletes_and_reports_changes() -> None:
    store: Store[ObjectView] = Store()
    assert list(store.apply(ev(EventType.INIT))) == []
    assert list(store.apply(ev(EventType.INIT_APPLY, obj("a")))) == []
    assert store.get("ns/a") is None, "a list in progress is not visible"
    changes = list(store.apply(ev(EventType.INIT_DONE, rv="10")))
    assert [(c.key, c.type) for c in changes] == [(ObjectKey("ns", "a"), "added")]
    assert store.synced and store.resource_version == "10"
    [change] = store.apply(ev(EventType.APPLY, obj("a", rv="11")))
    assert change.type == "modified" and change.old is not None
    assert change.old.meta.resource_version == "1"
    assert list(store.apply(ev(EventType.APPLY, obj("a", rv="11")))) == [], "replay is ignored"
    [change] = store.apply(ev(EventType.DELETE, obj("a", rv="12")))
    assert change.type == "deleted" and store.get(ObjectKey("ns", "a")) is None
    assert list(store.apply(ev(EventType.DELETE, obj("zzz", rv="13")))) == []


def test_store_relist_swaps_atomically_and_reports_only_real_changes() -> None:
    store: Store[ObjectView] = Store()
    store.apply(ev(EventType.INIT))
    for name in ("same", "changed", "gone", "recreated"):
        store.apply(ev(EventType.INIT_APPLY, obj(name)))
    store.apply(ev(EventType.INIT_DONE, rv="5"))
    # relist after 410: readers keep the old state until INIT_DONE
    store.apply(ev(EventType.INIT))
    store.apply(ev(EventType.INIT_APPLY, obj("same")))
    store.apply(ev(EventType.INIT_APPLY, obj("changed", rv="7")))
    recreated = obj("recreated")
    recreated["metadata"]["uid"] = "new-uid"
    store.apply(ev(EventType.INIT_APPLY, recreated))
    store.apply(ev(EventType.INIT_APPLY, obj("new", rv="8")))
    assert names(store) == ["changed", "gone", "recreated", "same"]
    assert store.get("ns/changed").metadata.resource_version == "1"  # type: ignore[union-attr]
    changes = {c.key.name: c.type for c in store.apply(ev(EventType.INIT_DONE, rv="9"))}
    assert changes == {"changed": "modified", "gone": "deleted", "recreated": "modified",
                       "new": "added"}
    assert names(store) == ["changed", "new", "recreated", "same"]
    assert store.list("ns") and len(store.list("ns")) == 4, "indexes rebuilt with the swap"


def test_store_indexes_namespace_owner_and_custom() -> None:
    store: Store[ObjectView] = Store()
    store.apply(ev(EventType.INIT))
    store.apply(ev(EventType.INIT_DONE, rv="1"))
    store.apply(ev(EventType.APPLY, obj("a", ns="x", ownerReferences=[{"uid": "o1"}])))
    store.apply(ev(EventType.APPLY, obj("b", ns="x", ownerReferences=[{"uid": "o2"}])))
    store.apply(ev(EventType.APPLY, obj("c", ns="y")))
    store.add_index("data", lambda o, m: [str(o["data"]["k"])])
    assert {o.name for o in store.list("x")} == {"a", "b"}
    assert [o.name for o in store.by_index("owner", "o1")] == ["a"]
    assert len(store.by_index("data", "v")) == 3
    # moving an object between owners updates the owner index
    store.apply(ev(EventType.APPLY, obj("a", ns="x", rv="2", ownerReferences=[{"uid": "o2"}])))
    assert store.by_index("owner", "o1") == []
    assert {o.name for o in store.by_index("owner", "o2")} == {"a", "b"}
    store.apply(ev(EventType.DELETE, obj("c", ns="y")))
    assert store.list("y") == [] and len(store.by_index("data", "v")) == 2


async def test_store_wait_until_synced() -> None:
    store: Store[ObjectView] = Store()
    with pytest.raises(TimeoutError):
        await store.wait_until_synced(timeout=0.01)
    waiter = asyncio.ensure_future(store.wait_until_synced(timeout=1))
    store.apply(ev(EventType.INIT))
    await asyncio.sleep(0)
    assert not waiter.done()
    store.apply(ev(EventType.INIT_DONE, rv="1"))
    await waiter
