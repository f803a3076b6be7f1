"""Api[T] request bodies: the fast JSON path writes exactly what Resource.encode() returns."""

from __future__ import annotations

import json

from bench.typed.codec import SAMPLE

from kuar.client.api import Api
from kuar.resources import ObjectMeta
from kuar_loadtest.api import LoadTest, LoadTestSpec


def test_request_body_equals_encode() -> None:
    obj = LoadTest.decode(SAMPLE)
    assert json.loads(Api._body(obj)) == obj.encode() == SAMPLE


def test_apply_body_has_only_set_fields_and_no_managed_fields() -> None:
    decoded = LoadTest.decode(SAMPLE)
    body = json.loads(Api._body(decoded, apply=True))
    assert "managedFields" not in body["metadata"]
    assert body["spec"] == SAMPLE["spec"]
    fresh = LoadTest(metadata=ObjectMeta(name="x"),
                     spec=LoadTestSpec(service="s", requests_per_second=1))
    assert json.loads(Api._body(fresh, apply=True)) == {
        "apiVersion": "beta.kuar.com/v1", "kind": "LoadTest", "metadata": {"name": "x"},
        "spec": {"service": "s", "requestsPerSecond": 1}}
