"""Conditions, predicates, event handlers and owner references (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest

from kuar.client import ResourceInfo
from kuar.runtime import (
    AlreadyOwned,
    Cached,
    Change,
    ObjectKey,
    ObjectView,
    Request,
    Result,
    annotations_changed,
    enqueue_mapped,
    enqueue_owner,
    find_condition,
    generation_changed,
    is_controlled_by,
    is_true,
    labels_changed,
    set_condition,
    set_controller_reference,
)

GEN = ResourceInfo("examples.kuar.dev", "v1", "Generator", "generators", True)


def cached(**meta: Any) -> Cached[ObjectView]:
    o = ObjectView({"metadata": {"name": "c", "namespace": "ns", **meta}})
    return Cached(o, o.metadata)


def change(old: dict[str, Any] | None, new: dict[str, Any] | None) -> Change[ObjectView]:
    return Change(
        ObjectKey("ns", "c"),
        cached(**old) if old is not None else None,
        cached(**new) if new is not None else None,
    )


def test_condition_transition_time_moves_only_when_status_changes() -> None:
    conds = set_condition(None, "Ready", "False", "Creating", "wait", observed_generation=1,
                          now="2026-01-01T00:00:00Z")
    conds = set_condition(conds, "Ready", "False", "StillCreating", "more", observed_generation=2,
                          now="2026-01-01T00:01:00Z")
    ready = find_condition(conds, "Ready")
    assert ready is not None
    assert ready["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert (ready["reason"], ready["message"], ready["observedGeneration"]) == (
        "StillCreating", "more", 2)
    conds2 = set_condition(conds, "Ready", "True", "Done", now="2026-01-01T00:02:00Z")
    assert find_condition(conds2, "Ready")["lastTransitionTime"] == "2026-01-01T00:02:00Z"  # type: ignore[index]
    assert is_true(conds2, "Ready") and not is_true(conds, "Ready")
    assert find_condition(conds, "Ready")["status"] == "False", "input list unchanged"  # type: ignore[index]


@pytest.mark.parametrize(("status", "reason"), [("Yes", "Ok"), ("True", "not ok!"), ("True", "")])
def test_condition_rejects_what_the_api_server_rejects(status: str, reason: str) -> None:
    with pytest.raises(ValueError):
        set_condition([], "Ready", status, reason)  # type: ignore[arg-type]


def test_predicates_judge_updates_and_pass_adds_and_deletes() -> None:
    assert generation_changed(change(None, {"generation": 1}))
    assert generation_changed(change({"generation": 1}, None))
    assert not generation_changed(change({"generation": 1}, {"generation": 1}))
    assert generation_changed(change({"generation": 1}, {"generation": 2}))
    assert labels_changed(change({"labels": {"a": "1"}}, {"labels": {"a": "2"}}))
    assert not labels_changed(change({"labels": {"a": "1"}}, {"labels": {"a": "1"}}))
    assert annotations_changed(change({}, {"annotations": {"a": "1"}}))
    assert not annotations_changed(change({"labels": {"x": "1"}}, {}))


def test_enqueue_owner_maps_controller_references_of_old_and_new_state() -> None:
    ref = {"apiVersion": "examples.kuar.dev/v1", "kind": "Generator", "name": "g1",
           "uid": "u1", "controller": True}
    other = {**ref, "name": "g2", "uid": "u2"}
    handler = enqueue_owner(GEN)
    assert list(handler(change(None, {"ownerReferences": [ref]}))) == [Request("ns", "g1")]
    moved = handler(change({"ownerReferences": [ref]}, {"ownerReferences": [other]}))
    assert set(moved) == {Request("ns", "g1"), Request("ns", "g2")}
    not_controller = {**ref, "controller": False}
    assert list(handler(change(None, {"ownerReferences": [not_controller]}))) == []
    other_kind = {**ref, "kind": "Other"}
    assert list(handler(change(None, {"ownerReferences": [other_kind]}))) == []
    other_version = {**ref, "apiVersion": "examples.kuar.dev/v2"}
    assert list(handler(change(None, {"ownerReferences": [other_version]}))) == [
        Request("ns", "g1")]


def test_enqueue_mapped_uses_the_map_function() -> None:
    handler = enqueue_mapped(lambda o: [Request("ns", o.name + "-x")])
    assert list(handler(change(None, {}))) == [Request("ns", "c-x")]


def test_set_controller_reference_and_conflicts() -> None:
    owner = {"metadata": {"name": "g1", "namespace": "ns", "uid": "u1"}}
    child: dict[str, Any] = {"metadata": {"name": "c", "namespace": "ns"}}
    set_controller_reference(child, owner, GEN)
    set_controller_reference(child, owner, GEN)  # idempotent
    assert len(child["metadata"]["ownerReferences"]) == 1
    assert is_controlled_by(child, owner)
    with pytest.raises(AlreadyOwned):
        set_controller_reference(child, {"metadata": {"name": "g2", "uid": "u2"}}, GEN)
    with pytest.raises(ValueError):
        set_controller_reference({"metadata": {"namespace": "other"}}, owner, GEN)


def test_result_constructors() -> None:
    assert Result.done() == Result()
    assert Result.requeue(after=30).requeue_after == 30
    assert Result.requeue().rate_limited
    with pytest.raises(ValueError):
        Result.requeue(after=-1)
