"""Typed decode/encode of a LoadTest with status against plain dicts (objects per second)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

from kuar_loadtest.api import LoadTest

SAMPLE: dict[str, Any] = {
    "apiVersion": "beta.kuar.com/v1",
    "kind": "LoadTest",
    "metadata": {
        "name": "my-loadtest", "namespace": "default",
        "uid": "6d1f1f4e-9a55-4a57-9c3b-2f0e8a1c3c11", "resourceVersion": "123456",
        "generation": 4, "creationTimestamp": "2026-05-01T10:00:00Z",
        "labels": {"app": "shop", "team": "perf"},
        "annotations": {"kuar.dev/owner": "perf-team"},
        "finalizers": ["beta.kuar.com/cleanup"],
        "managedFields": [
            {"manager": "kubectl", "operation": "Apply", "apiVersion": "beta.kuar.com/v1",
             "time": "2026-05-01T10:00:00Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:service": {}, "f:scheme": {}, "f:paths": {}}}},
            {"manager": "loadtest-controller", "operation": "Update", "subresource": "status",
             "apiVersion": "beta.kuar.com/v1", "time": "2026-05-01T10:00:05Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:phase": {}}}},
        ],
    },
    "spec": {"service": "my-service", "scheme": "https", "requestsPerSecond": 1000,
             "paths": ["/index.html", "/login.html", "/shares/my-shares/"],
             "duration": "5m", "workers": 4},
    "status": {
        "observedGeneration": 4, "phase": "Running", "message": "4/4 workers running",
        "jobName": "my-loadtest-4", "startTime": "2026-05-01T10:00:04Z",
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "WorkersRunning", "message": "ok",
             "lastTransitionTime": "2026-05-01T10:00:05Z", "observedGeneration": 4},
            {"type": "Complete", "status": "False", "reason": "Running", "message": "",
             "lastTransitionTime": "2026-05-01T10:00:05Z", "observedGeneration": 4},
        ],
    },
}


def _rate(fn: Callable[[], object], seconds: float) -> float:
    fn()
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(200):
            fn()
        count += 200
    return count / elapsed


def run(seconds: float = 1.0) -> list[tuple[str, str, float]]:
    """(operation, variant, objects/s) for each way of decoding and encoding."""
    raw = json.dumps(SAMPLE).encode()
    obj = LoadTest.model_validate(SAMPLE)
    assert obj.encode() == SAMPLE  # the typed round trip is lossless for this object
    rows = [
        ("decode bytes", "plain dict: json.loads", lambda: json.loads(raw)),
        ("decode bytes", "typed: json.loads + model_validate (Api)",
         lambda: LoadTest.model_validate(json.loads(raw))),
        ("decode bytes", "typed: model_validate_json", lambda: LoadTest.model_validate_json(raw)),
        ("decode dict", "plain dict: copy.deepcopy", lambda: copy.deepcopy(SAMPLE)),
        ("decode dict", "typed: model_validate", lambda: LoadTest.model_validate(SAMPLE)),
        ("decode dict", "typed: model_construct (no validation, nested stay dicts)",
         lambda: LoadTest.model_construct(**SAMPLE)),
        ("encode bytes", "plain dict: json.dumps", lambda: json.dumps(SAMPLE)),
        ("encode bytes", "typed: encode() + json.dumps",
         lambda: json.dumps(obj.encode(), separators=(",", ":"))),
        ("encode bytes", "typed: model_dump_json (Api request bodies)",
         lambda: obj.model_dump_json(by_alias=True, exclude_none=True)),
        ("encode dict", "typed: encode()", obj.encode),
    ]
    return [(op, variant, _rate(fn, seconds)) for op, variant, fn in rows]
