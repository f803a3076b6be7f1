"""Typed objects: camelCase on the wire, unknown fields kept, apiVersion/kind filled."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from kuar.models.batch.v1 import Job
from kuar.models.core.v1 import Pod, Service
from kuar.resources import DynamicObject, ObjectMeta, ResourceInfo
from kuar_loadtest.api import LoadTest, LoadTestSpec, LoadTestStatus

SERVER_LOADTEST: dict[str, Any] = {
    "apiVersion": "beta.kuar.com/v1",
    "kind": "LoadTest",
    "metadata": {
        "name": "my-loadtest", "namespace": "default", "uid": "u-1",
        "resourceVersion": "42", "generation": 3,
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:x": {}}}],
        "futureMetaField": "from-a-newer-server",
    },
    "spec": {"service": "my-service", "scheme": "https", "requestsPerSecond": 1000,
             "paths": ["/index.html"], "duration": "60s", "workers": 1,
             "futureField": {"added": "by a newer schema"}},
    "status": {"phase": "Running", "observedGeneration": 3,
               "conditions": [{"type": "Ready", "status": "True", "reason": "Started",
                               "message": "", "lastTransitionTime": "2024-05-01T10:00:01Z"}]},
}


def test_decode_then_encode_gives_back_the_same_json() -> None:
    obj = LoadTest.decode(SERVER_LOADTEST)
    assert obj.spec.requests_per_second == 1000
    assert obj.metadata.creation_timestamp == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert obj.status is not None and obj.status.conditions is not None
    assert obj.status.conditions[0].type == "Ready"
    assert obj.encode() == SERVER_LOADTEST


def test_fields_the_model_does_not_declare_survive_a_round_trip() -> None:
    obj = LoadTest.decode(SERVER_LOADTEST)
    assert obj.spec.model_extra == {"futureField": {"added": "by a newer schema"}}
    assert obj.metadata.model_extra == {"futureMetaField": "from-a-newer-server"}
    obj.spec.requests_per_second = 5
    assert obj.encode()["spec"]["futureField"] == {"added": "by a newer schema"}


def test_snake_case_and_camel_case_names_are_both_accepted() -> None:
    a = LoadTestSpec(service="s", requests_per_second=3)
    b = LoadTestSpec.model_validate({"service": "s", "requestsPerSecond": 3})
    assert a == b
    assert a.model_dump(by_alias=True)["requestsPerSecond"] == 3


def test_api_version_and_kind_come_from_the_class_when_absent() -> None:
    obj = LoadTest(metadata=ObjectMeta(name="x"),
                   spec=LoadTestSpec(service="s", requests_per_second=1))
    assert (obj.api_version, obj.kind) == ("beta.kuar.com/v1", "LoadTest")
    item = {k: v for k, v in SERVER_LOADTEST.items() if k not in ("apiVersion", "kind")}
    assert LoadTest.decode(item).kind == "LoadTest"
    assert Job.decode({"metadata": {"name": "j"}}).api_version == "batch/v1"


def test_resource_info_describes_where_the_kind_lives() -> None:
    assert LoadTest.resource_info() == ResourceInfo("beta.kuar.com", "v1", "LoadTest",
                                                    "loadtests", True)
    assert LoadTest.resource_info().path("ns", "a") == (
        "/apis/beta.kuar.com/v1/namespaces/ns/loadtests/a")
    assert Pod.resource_info().path("ns") == "/api/v1/namespaces/ns/pods"
    with pytest.raises(TypeError, match="declares no kind"):
        DynamicObject.resource_info()


def test_encode_leaves_out_none_and_apply_encoding_leaves_out_unset_fields() -> None:
    obj = LoadTest(metadata=ObjectMeta(name="x"),
                   spec=LoadTestSpec(service="s", requests_per_second=1))
    full = obj.encode()
    assert "status" not in full and "port" not in full["spec"] and "workers" not in full["spec"]
    assert full["spec"]["duration"] == "60s"  # defaults are sent on create...
    applied = obj.encode(exclude_unset=True)
    assert applied == {"apiVersion": "beta.kuar.com/v1", "kind": "LoadTest",
                       "metadata": {"name": "x"},
                       "spec": {"service": "s", "requestsPerSecond": 1}}  # ...not on apply


def test_invalid_server_data_raises_a_validation_error_naming_the_field() -> None:
    bad = {**SERVER_LOADTEST, "spec": {**SERVER_LOADTEST["spec"], "requestsPerSecond": "many"}}
    with pytest.raises(ValidationError, match="requestsPerSecond"):
        LoadTest.decode(bad)


def test_naive_datetimes_are_refused_because_the_server_needs_a_zone() -> None:
    with pytest.raises(ValidationError):
        LoadTestStatus(start_time=datetime(2024, 1, 1))


def test_built_in_kinds_keep_k8s_acronym_names() -> None:
    svc = Service.decode({"metadata": {"name": "s"},
                          "spec": {"clusterIP": "10.0.0.1", "sessionAffinity": "None"}})
    assert svc.spec is not None and svc.spec.cluster_ip == "10.0.0.1"
    assert svc.encode()["spec"] == {"clusterIP": "10.0.0.1", "sessionAffinity": "None"}
    pod = Pod.decode({"metadata": {"name": "p"}, "status": {"podIP": "10.1.1.1"}})
    assert pod.status is not None and pod.status.pod_ip == "10.1.1.1"


def test_dynamic_object_keeps_everything_as_extra_fields() -> None:
    data = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"a": "b"}}
    obj = DynamicObject.decode(data)
    assert obj["data"] == {"a": "b"} and obj.encode() == data
    with pytest.raises(KeyError):
        obj["spec"]
