"""The LoadTest validator and defaulter on typed v2 objects (no API server).

The specs are written with the seed's v1 field names and converted to v2, as the API server
does before calling the webhooks; denials name the v2 fields.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonpatch
import pytest

from kuar.webhook.review import parse_admission_review
from kuar_loadtest.api.conversion import v2_to_v1
from kuar_loadtest.webhooks import LoadTestWebhookSettings, build, defaulter, validator
from tests.unit.webhook.conftest import admission_review, body, loadtest


async def validate(obj: dict[str, Any], **kw: Any) -> dict[str, Any]:
    hook = build(LoadTestWebhookSettings(**kw))[0] if kw else validator
    return (await hook.review(parse_admission_review(body(admission_review(obj)))))["response"]


async def test_seed_example_is_allowed() -> None:
    response = await validate(loadtest())
    assert response["allowed"] is True
    assert "warnings" not in response


@pytest.mark.parametrize(("spec", "field", "words"), [
    ({"scheme": "ftp"}, "spec.target.scheme", 'Unsupported value: "ftp"'),
    ({"requestsPerSecond": 0}, "spec.load.requestsPerSecond", "Invalid value: 0"),
    ({"requestsPerSecond": -3}, "spec.load.requestsPerSecond", "Invalid value: -3"),
    ({"requestsPerSecond": 200_000}, "spec.load.requestsPerSecond", "must be at most 50000"),
    ({"paths": ["/a", "b"]}, "spec.target.paths[1]", 'Invalid value: "b"'),
    ({"service": "My_Service"}, "spec.target.service", "DNS-1035"),
    ({"service": "1abc"}, "spec.target.service", "DNS-1035"),
    ({"service": "a" * 64}, "spec.target.service", "DNS-1035"),
])
async def test_denials_name_the_field(spec: dict[str, Any], field: str, words: str) -> None:
    response = await validate(loadtest(**spec))
    assert response["allowed"] is False
    assert response["status"]["code"] == 422
    causes = response["status"]["details"]["causes"]
    assert field in [c["field"] for c in causes]
    assert words in response["status"]["message"]
    assert response["status"]["message"].startswith(field)


@pytest.mark.parametrize("bad", [
    "/a\r\nX-Injected: 1",  # CR/LF would end the request line and add a header
    "/a\nb", "/a b", "/a\tb", "/a\x00b", "/a\x7fb", "/a\x85b",
])
async def test_paths_with_control_characters_or_spaces_are_denied(bad: str) -> None:
    response = await validate(loadtest(paths=["/ok", bad]))
    assert response["allowed"] is False, response
    assert response["status"]["code"] == 422
    assert [c["field"] for c in response["status"]["details"]["causes"]] == ["spec.target.paths[1]"]
    message = response["status"]["message"]
    assert message.startswith("spec.target.paths[1]: Invalid value: ")
    assert "control characters" in message
    assert "\r" not in message and "\n" not in message  # quoted, never raw


async def test_non_ascii_and_percent_encoded_paths_are_allowed() -> None:
    # the worker percent-encodes non-ASCII (docs/loadgen.md); what the user wrote is kept
    response = await validate(loadtest(paths=["/€", "/caf%C3%A9?q=a%20b", "/ünïcode/ページ"]))
    assert response["allowed"] is True, response


async def test_the_cap_is_configurable_and_many_requests_per_worker_warn() -> None:
    assert (await validate(loadtest(requestsPerSecond=200_000),
                           max_requests_per_second=500_000))["allowed"] is True
    response = await validate(loadtest(requestsPerSecond=20_000, workers=1))
    assert response["allowed"] is True
    assert "per worker" in response["warnings"][0]
    # without workers the operator sizes the Job: nothing to warn about
    assert not (await validate(loadtest(requestsPerSecond=20_000))).get("warnings")


async def test_every_bad_field_is_reported_at_once() -> None:
    # the validator's own rules, together
    response = await validate(loadtest(service="X", requestsPerSecond=200_000))
    fields = {c["field"] for c in response["status"]["details"]["causes"]}
    assert fields == {"spec.target.service", "spec.load.requestsPerSecond"}
    # what the typed model refuses, together (the validator runs only on decodable objects)
    response = await validate(loadtest(scheme="ftp", paths=["x"], requestsPerSecond=0))
    fields = {c["field"] for c in response["status"]["details"]["causes"]}
    assert fields == {"spec.target.scheme", "spec.target.paths[0]", "spec.load.requestsPerSecond"}


async def test_update_is_validated_like_create() -> None:
    review = admission_review(loadtest(service="Bad"), operation="UPDATE", old=loadtest())
    response = (await validator.review(parse_admission_review(body(review))))["response"]
    assert response["allowed"] is False


async def default(obj: dict[str, Any]) -> dict[str, Any]:
    response = (await defaulter.review(
        parse_admission_review(body(admission_review(obj)))))["response"]
    assert response["allowed"] is True
    if "patch" not in response:
        return v2_to_v1(obj)
    patched = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(response["patch"])))
    return v2_to_v1(patched)  # compared in the seed's v1 shape


async def test_defaulter_fills_scheme_paths_and_duration_and_leaves_port_and_workers() -> None:
    out = await default(loadtest(scheme=None, paths=None))
    # port comes from the Service and workers from the rate, in the controller
    assert out["spec"] == {"service": "my-service", "requestsPerSecond": 1000,
                           "scheme": "http", "paths": ["/"], "duration": "60s"}
    assert out["metadata"] == v2_to_v1(loadtest())["metadata"]


async def test_defaulter_keeps_what_the_user_set() -> None:
    spec = {"service": "s", "scheme": "https", "requestsPerSecond": 5, "paths": ["/x"],
            "port": 8443, "duration": "5m", "workers": 2}
    assert (await default(loadtest(**spec)))["spec"] == spec
