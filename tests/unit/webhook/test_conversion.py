"""Hub-and-spoke conversion: typed converters, metadata rules, LoadTest losslessness."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from kuar.webhook import Codec, ConversionWebhook, HubAndSpoke, Spoke
from kuar.webhook.review import parse_conversion_review
from kuar_loadtest.api.conversion import LOADTEST_CONVERSION, V1_FIELDS, V2_FIELDS
from tests.unit.webhook.conftest import body


class Hub(BaseModel):
    apiVersion: str
    kind: str
    metadata: dict[str, Any]
    spec: dict[str, Any]


class Temperature1(BaseModel):
    apiVersion: str
    kind: str
    metadata: dict[str, Any]
    celsius: float


class Temperature2(BaseModel):
    apiVersion: str
    kind: str
    metadata: dict[str, Any]
    fahrenheit: float


def c_to_hub(t: Temperature1) -> Hub:
    return Hub(apiVersion="x.io/v3", kind="T", metadata=t.metadata, spec={"k": t.celsius + 273})


def c_from_hub(h: Hub) -> Temperature1:
    return Temperature1(apiVersion="x.io/v1", kind="T", metadata=h.metadata,
                        celsius=h.spec["k"] - 273)


def f_to_hub(t: Temperature2) -> Hub:
    return Hub(apiVersion="x.io/v3", kind="T", metadata=t.metadata,
               spec={"k": (t.fahrenheit - 32) * 5 / 9 + 273})


def f_from_hub(h: Hub) -> Temperature2:
    return Temperature2(apiVersion="x.io/v2", kind="T", metadata=h.metadata,
                        fahrenheit=(h.spec["k"] - 273) * 9 / 5 + 32)


TEMPS = HubAndSpoke(group="x.io", kind="T", hub_version="v3", hub=Codec.of(Hub), spokes=[
    Spoke(version="v1", codec=Codec.of(Temperature1), to_hub=c_to_hub, from_hub=c_from_hub),
    Spoke(version="v2", codec=Codec.of(Temperature2), to_hub=f_to_hub, from_hub=f_from_hub),
])


def review(objects: list[dict[str, Any]], desired: str) -> Any:
    return parse_conversion_review(body({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "request": {"uid": "u1", "desiredAPIVersion": desired, "objects": objects}}))


META = {"name": "t", "uid": "1", "resourceVersion": "5", "generation": 2,
        "labels": {"a": "b"}}


def test_spoke_to_spoke_goes_through_the_hub() -> None:
    obj = {"apiVersion": "x.io/v1", "kind": "T", "metadata": META, "celsius": 100.0}
    answer = ConversionWebhook(converters=[TEMPS]).review(review([obj], "x.io/v2"))
    assert answer["response"]["uid"] == "u1"
    assert answer["response"]["result"] == {"status": "Success"}
    [out] = answer["response"]["convertedObjects"]
    assert out["apiVersion"] == "x.io/v2"
    assert abs(out["fahrenheit"] - 212.0) < 1e-9
    assert out["metadata"] == META


def test_objects_already_in_the_desired_version_pass_untouched_and_order_is_kept() -> None:
    a = {"apiVersion": "x.io/v2", "kind": "T", "metadata": {"name": "a"}, "fahrenheit": 1.0}
    b = {"apiVersion": "x.io/v3", "kind": "T", "metadata": {"name": "b"}, "spec": {"k": 300}}
    answer = ConversionWebhook(converters=[TEMPS]).review(review([a, b], "x.io/v2"))
    out = answer["response"]["convertedObjects"]
    assert out[0] == a
    assert [o["metadata"]["name"] for o in out] == ["a", "b"]


def test_conversion_may_change_only_labels_and_annotations_in_metadata() -> None:
    def sneaky(t: Temperature1) -> Hub:
        meta = {**t.metadata, "name": "renamed", "labels": {"new": "1"}}
        return Hub(apiVersion="x.io/v3", kind="T", metadata=meta, spec={"k": 1})

    conv = HubAndSpoke(group="x.io", kind="T", hub_version="v3", hub=Codec.of(Hub), spokes=[
        Spoke(version="v1", codec=Codec.of(Temperature1), to_hub=sneaky, from_hub=c_from_hub)])
    obj = {"apiVersion": "x.io/v1", "kind": "T", "metadata": META, "celsius": 1.0}
    out = conv.convert(obj, "x.io/v3")
    assert out["metadata"] == {**META, "labels": {"new": "1"}}


def test_failures_answer_failure_naming_the_object() -> None:
    hook = ConversionWebhook(converters=[TEMPS])
    unknown = {"apiVersion": "x.io/v9", "kind": "T", "metadata": {"name": "n"}}
    answer = hook.review(review([unknown], "x.io/v1"))
    assert answer["response"]["result"]["status"] == "Failure"
    assert "'n'" in answer["response"]["result"]["message"]
    assert answer["response"]["convertedObjects"] == []
    bad = {"apiVersion": "x.io/v1", "kind": "T", "metadata": {"name": "m"}, "celsius": "hot"}
    answer = hook.review(review([bad], "x.io/v2"))
    assert "celsius" in answer["response"]["result"]["message"]
    other = {"apiVersion": "y.io/v1", "kind": "U", "metadata": {"name": "o"}}
    assert "no converter" in hook.review(review([other], "y.io/v2"))["response"]["result"][
        "message"]


def v1(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "lt", "namespace": "ns", "uid": "u", "resourceVersion": "7"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "beta.kuar.com/v1", "kind": "LoadTest", "metadata": meta,
            "spec": spec, "status": {"phase": "Running"}}


def test_loadtest_v1_to_v2_nests_and_adds_no_defaults() -> None:
    out = LOADTEST_CONVERSION.convert(v1({"service": "s", "requestsPerSecond": 5}),
                                      "beta.kuar.com/v2")
    assert out["spec"] == {"target": {"service": "s"}, "load": {"requestsPerSecond": 5}}
    assert out["status"] == {"phase": "Running"}
    assert "annotations" not in out["metadata"]


names = st.text(alphabet="abcdefghij-", min_size=1, max_size=8)
scalars = st.one_of(st.integers(-5, 10**6), names, st.booleans())
v2_specs = st.fixed_dictionaries(
    {"target": st.fixed_dictionaries({}, optional={
        "service": names, "scheme": st.sampled_from(["http", "https"]),
        "port": st.integers(1, 65535), "paths": st.lists(names.map(lambda n: "/" + n)),
        "headers": st.dictionaries(names, names, max_size=3), "futureTarget": scalars}),
     "load": st.fixed_dictionaries({}, optional={
         "requestsPerSecond": st.integers(1, 10**6), "workers": st.integers(1, 100),
         "duration": st.sampled_from(["1s", "5m"]), "rampUp": st.sampled_from(["10s", "1m"]),
         "futureLoad": scalars})},
    optional={"futureSpec": scalars},
)
v1_specs = st.fixed_dictionaries({}, optional={
    "service": names, "scheme": st.sampled_from(["http", "https", "ftp"]),
    "requestsPerSecond": st.integers(-1, 10**6), "paths": st.lists(names),
    "port": st.integers(1, 65535), "workers": st.integers(1, 100), "duration": names,
    "oldField": scalars})
user_annotations = st.dictionaries(st.sampled_from(["a.io/x", "b.io/y"]), names, max_size=2)


@settings(max_examples=200, deadline=None)
@given(spec=v2_specs, annotations=user_annotations)
def test_loadtest_v2_round_trip_through_v1_is_lossless(
    spec: dict[str, Any], annotations: dict[str, str]
) -> None:
    obj = v1({}, annotations)
    obj["apiVersion"], obj["spec"] = "beta.kuar.com/v2", spec
    original = copy.deepcopy(obj)
    stored = LOADTEST_CONVERSION.convert(obj, "beta.kuar.com/v1")
    assert obj == original  # the input is not modified
    assert V1_FIELDS not in (stored["metadata"].get("annotations") or {})
    back = LOADTEST_CONVERSION.convert(stored, "beta.kuar.com/v2")
    assert back == original


@settings(max_examples=200, deadline=None)
@given(spec=v1_specs, annotations=user_annotations)
def test_loadtest_v1_round_trip_through_v2_is_lossless(
    spec: dict[str, Any], annotations: dict[str, str]
) -> None:
    obj = v1(spec, annotations)
    original = copy.deepcopy(obj)
    as_v2 = LOADTEST_CONVERSION.convert(obj, "beta.kuar.com/v2")
    assert V2_FIELDS not in (as_v2["metadata"].get("annotations") or {})
    assert LOADTEST_CONVERSION.convert(as_v2, "beta.kuar.com/v1") == original


def test_the_v2_load_model_survives_a_round_trip_through_v1() -> None:
    spec = {"target": {"service": "web", "requests": [
                {"method": "POST", "path": "/o", "body": "{}", "weight": 3},
                {"method": "PUT", "bodyFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
            "load": {"startRate": 10, "workers": 200,
                     "stages": [{"duration": "1m", "target": 100}]},
            "thresholds": ["p99 < 50ms"], "abortOnFail": True, "cleanup": "post",
            "runner": {"nodeSelector": {"pool": "load"}, "separate": True}}
    obj = v1({}, {})
    obj["apiVersion"], obj["spec"] = "beta.kuar.com/v2", spec
    original = copy.deepcopy(obj)
    as_v1 = LOADTEST_CONVERSION.convert(obj, "beta.kuar.com/v1")
    assert as_v1["spec"] == {"service": "web", "workers": 200}
    assert LOADTEST_CONVERSION.convert(as_v1, "beta.kuar.com/v2") == original
