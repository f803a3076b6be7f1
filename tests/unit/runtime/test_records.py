"""The cache's stored form: records behind shared key tables, read through the views."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest

from kuar.runtime import (
    EventType,
    FrozenDict,
    ObjectKey,
    ObjectView,
    Store,
    WatchEvent,
    objects,
    thaw,
)
from kuar.runtime.objects import MetaView, Record, pack, pack_metadata


def served(name: str, ns: str = "ns", rv: str = "7", **spec: Any) -> dict[str, Any]:
    """A fresh decoded object, as json.loads makes it (no string shared with another call)."""
    return json.loads(json.dumps({
        "apiVersion": "bench.kuar.com/v1", "kind": "BenchLoad",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}",
                     "resourceVersion": rv, "generation": 2,
                     "labels": {"app": "shop", "team": "perf"},
                     "ownerReferences": [{"uid": "owner-1", "controller": True, "kind": "X"}],
                     "finalizers": ["f"]},
        "spec": {"service": "my-service", "paths": ["/a", {"deep": [1, 2.5, None]}],
                 "empty": {}, **spec},
        "status": {"observedGeneration": 2, "conditions": [
            {"type": "Ready", "status": "True", "reason": "Running"}]},
    }))


def packed_twice(name: str = "a", **kw: Any) -> Any:
    """Pack the same shape twice: key sets become shared tables on their second sighting."""
    pack(served("warm-up", **kw))
    return pack(served(name, **kw))


def test_a_repeated_shape_is_stored_as_records_that_read_like_the_json() -> None:
    raw = served("a")
    stored = packed_twice("a")
    meta, spec = stored.get("metadata"), stored.get("spec")
    assert type(stored) is Record and type(meta) is Record
    assert type(spec.get("paths")) is list, "arrays stay lists"
    assert type(spec.get("paths")[1]) is Record
    # equal to the dict it came from, in both directions and nested
    assert stored == raw and raw == stored
    assert not stored.__ne__(raw)
    assert stored != served("a", rv="8") and stored != {**raw, "extra": 1}
    assert list(stored.keys()) == list(raw) and stored.values()[0] == raw["apiVersion"]
    assert dict(stored.items())["kind"] == "BenchLoad"
    assert "spec" in stored and "nope" not in stored and stored.get("nope", 3) == 3
    assert json.loads(json.dumps(thaw(stored))) == raw
    condition = stored.get("status").get("conditions")[0]
    assert repr(condition).startswith("Record({'type': 'Ready'")
    # records of other shapes (other key order) compare by content too
    assert pack(served("a")) == pack(json.loads(json.dumps(
        {k: raw[k] for k in reversed(list(raw))})))


def test_views_over_records_are_read_only_and_give_the_same_answers() -> None:
    raw, stored = served("a"), packed_twice("a")
    for view in (ObjectView(raw), ObjectView(stored)):
        assert view.key == ObjectKey("ns", "a")
        meta = view.metadata
        assert (meta.name, meta.uid, meta.resource_version, meta.generation) == (
            "a", "uid-ns-a", "7", 2)
        assert meta.labels == {"app": "shop", "team": "perf"} and meta.finalizers == ("f",)
        ref = meta.controller_reference()
        assert ref is not None and ref["uid"] == "owner-1"
        assert meta.owner_references[0]["kind"] == "X"
        assert view.path("spec", "paths", 1, "deep", 1) == 2.5
        assert view.path("spec", "paths", 1, "nope", default="d") == "d"
        assert view.spec["paths"][1] == {"deep": [1, 2.5, None]}
        assert dict(view.status["conditions"][0].items())["reason"] == "Running"
        nested = view["spec"]["paths"][1]
        assert isinstance(nested, FrozenDict)
        with pytest.raises(TypeError):
            nested["deep"] = 1  # type: ignore[index]
        copy_ = view.thaw()
        copy_["spec"]["paths"][1]["deep"].append(3)
        assert view.path("spec", "paths", 1, "deep") == [1, 2.5, None], "thaw copies"
        assert type(copy_["metadata"]) is dict and type(copy_["spec"]["paths"][1]) is dict
    assert ObjectView(raw) == ObjectView(stored) and ObjectView(stored) == raw


def test_copies_and_pickles_of_a_record_are_plain_dicts() -> None:
    stored = packed_twice("a")
    for twin in (copy.deepcopy(stored), pickle.loads(pickle.dumps(stored)),
                 copy.copy(stored)):
        assert type(twin) is dict and twin == stored


def test_keys_and_short_strings_are_shared_but_unique_metadata_values_are_not() -> None:
    a, b = packed_twice("same", ns="x", rv="1234"), packed_twice("same", ns="x", rv="1234")
    meta_a, meta_b = a.get("metadata"), b.get("metadata")
    assert meta_a.get("labels").get("app") is meta_b.get("labels").get("app")
    assert a.get("spec").get("service") is b.get("spec").get("service")
    assert meta_a.get("namespace") is meta_b.get("namespace")
    key_a = next(k for k in meta_a.keys() if k == "namespace")  # noqa: SIM118
    key_b = next(k for k in meta_b.keys() if k == "namespace")  # noqa: SIM118
    assert key_a is key_b
    # one key table per key set, shared by every record of that shape
    assert meta_a[0] is meta_b[0]
    # name, uid and resourceVersion are unique per object: not put in the intern table
    assert meta_a.get("name") == meta_b.get("name")
    assert meta_a.get("name") is not meta_b.get("name")
    assert meta_a.get("resourceVersion") is not meta_b.get("resourceVersion")
    meta = pack_metadata(served("m")["metadata"])
    assert meta == served("m")["metadata"]


def test_key_sets_seen_once_stay_dicts_and_the_shape_table_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unique = {"only-in-this-object-1": "v", "only-in-this-object-2": "w"}
    once = pack({"metadata": {"name": "c"}, "data": dict(unique)})
    assert type(once.get("data")) is dict and once.get("data") == unique
    monkeypatch.setattr(objects, "_SHAPES", {})
    monkeypatch.setattr(objects, "_SEEN_ONCE", {})
    monkeypatch.setattr(objects, "MAX_SHAPES", 2)
    for i in range(5):  # five key sets, each seen twice: only two get a table
        pack({f"k{i}": 1})
        pack({f"k{i}": 1})
    assert len(objects._SHAPES) == 2
    assert type(pack({"k0": 1})) is Record and type(pack({"k4": 1})) is dict
    assert pack({"k4": 1}) == {"k4": 1}


def test_the_store_keys_indexes_and_diffs_records_like_dicts() -> None:
    store: Store[ObjectView] = Store()

    def event(kind: EventType, raw: Any) -> WatchEvent[ObjectView]:
        meta = MetaView(raw.get("metadata"))
        return WatchEvent(kind, ObjectView(raw), meta, meta.resource_version)

    store.apply(WatchEvent(EventType.INIT, None, None, ""))
    store.apply(event(EventType.INIT_APPLY, packed_twice("a")))
    store.apply(event(EventType.INIT_APPLY, packed_twice("b", ns="other")))
    changes = store.apply(WatchEvent(EventType.INIT_DONE, None, None, "9"))
    assert {c.key.name for c in changes} == {"a", "b"}
    assert {o.name for o in store.by_index("owner", "owner-1")} == {"a", "b"}
    assert [o.name for o in store.list("other")] == ["b"]
    assert list(store.apply(event(EventType.APPLY, packed_twice("a")))) == [], "same version"
    [change] = store.apply(event(EventType.APPLY, packed_twice("a", rv="8")))
    assert change.type == "modified" and change.old is not None
    assert change.old.meta.resource_version == "7"
