"""Validating and mutating webhooks: verdicts, field causes, patches, timeouts, dry run."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any, Literal

import jsonpatch
from pydantic import BaseModel, Field

from kuar.webhook import (
    RAW,
    Admission,
    AdmissionRule,
    Codec,
    Denied,
    FieldErrors,
    MutatingWebhook,
    ValidatingWebhook,
    Validator,
)
from kuar.webhook.review import parse_admission_review
from tests.unit.webhook.conftest import admission_review, body

RULE = AdmissionRule(api_groups=("beta.kuar.com",), api_versions=("v1",), resources=("loadtests",))


class Spec(BaseModel):
    scheme: Literal["http", "https"] = "http"
    rps: int = Field(ge=1)


class Thing(BaseModel):
    apiVersion: str = "beta.kuar.com/v1"
    kind: str = "LoadTest"
    metadata: dict[str, Any] = {}
    spec: Spec


def request(obj: dict[str, Any] | None, **kw: Any):
    return parse_admission_review(body(admission_review(obj, **kw)))


def thing(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "beta.kuar.com/v1", "kind": "LoadTest",
            "metadata": {"name": "a", "creationTimestamp": None}, "spec": spec}


class RpsCap(Validator[Thing]):
    def __init__(self) -> None:
        self.deleted: list[str] = []

    async def validate_create(self, obj: Thing, admission: Admission[Thing]) -> list[str]:
        errors = FieldErrors()
        if obj.spec.rps > 100:
            errors.invalid("spec.rps", obj.spec.rps, "must be at most 100")
        errors.raise_if_any()
        return ["rps is high"] if obj.spec.rps > 50 else []

    def validate_update(self, old: Thing, new: Thing, admission: Admission[Thing]) -> None:
        if new.spec.rps < old.spec.rps:
            raise Denied("rps may not go down")

    async def validate_delete(self, old: Thing, admission: Admission[Thing]) -> None:
        self.deleted.append(admission.request.name)


def validating(validator: Validator[Any], **kw: Any) -> ValidatingWebhook[Any]:
    kw.setdefault("codec", Codec.of(Thing))
    return ValidatingWebhook(name="v.kuar.com", path="/v", rules=(RULE,), validator=validator,
                             **kw)


async def test_validator_allows_with_warnings_and_echoes_uid() -> None:
    req = request(thing(rps=60), uid="uid-123")
    answer = await validating(RpsCap()).review(req)
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == "uid-123"
    assert answer["response"]["allowed"] is True
    assert answer["response"]["warnings"] == ["rps is high"]


async def test_validator_denial_names_the_field_with_422_and_causes() -> None:
    answer = await validating(RpsCap()).review(request(thing(rps=101)))
    response = answer["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 422
    assert response["status"]["reason"] == "Invalid"
    assert response["status"]["message"] == "spec.rps: Invalid value: 101: must be at most 100"
    assert response["status"]["details"]["causes"] == [
        {"field": "spec.rps", "reason": "FieldValueInvalid",
         "message": "Invalid value: 101: must be at most 100"}]


async def test_object_that_does_not_decode_is_denied_per_field() -> None:
    answer = await validating(RpsCap()).review(request(thing(scheme="ftp", rps=0)))
    status = answer["response"]["status"]
    fields = {c["field"]: c for c in status["details"]["causes"]}
    assert set(fields) == {"spec.scheme", "spec.rps"}
    assert fields["spec.scheme"]["reason"] == "FieldValueNotSupported"
    assert fields["spec.scheme"]["message"].startswith('Unsupported value: "ftp"')
    assert "spec.rps: Invalid value: 0" in status["message"]


async def test_update_gets_old_and_new_and_sync_handlers_work() -> None:
    hook = validating(RpsCap())
    answer = await hook.review(request(thing(rps=5), operation="UPDATE", old=thing(rps=9)))
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"] == {"status": "Failure", "code": 403,
                                            "message": "rps may not go down",
                                            "reason": "Forbidden"}
    ok = await hook.review(request(thing(rps=10), operation="UPDATE", old=thing(rps=9)))
    assert ok["response"]["allowed"] is True


async def test_delete_gets_the_old_object() -> None:
    validator = RpsCap()
    answer = await validating(validator).review(
        request(None, operation="DELETE", old=thing(rps=3)))
    assert answer["response"]["allowed"] is True
    assert validator.deleted == ["my-loadtest"]


class Slow(Validator[dict[str, Any]]):
    async def validate_create(self, obj: dict[str, Any], admission: Admission[Any]) -> None:
        await asyncio.sleep(10)


async def test_slow_handler_gets_failure_policy_fail_not_a_hang() -> None:
    hook = validating(Slow(), codec=RAW, handler_timeout=0.05, failure_policy="Fail")
    started = asyncio.get_running_loop().time()
    answer = await hook.review(request(thing(rps=1)))
    assert asyncio.get_running_loop().time() - started < 1
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["code"] == 500
    assert answer["response"]["status"]["reason"] == "Timeout"


async def test_slow_handler_with_ignore_policy_is_allowed_with_a_warning() -> None:
    hook = validating(Slow(), codec=RAW, handler_timeout=0.05, failure_policy="Ignore")
    answer = await hook.review(request(thing(rps=1)))
    assert answer["response"]["allowed"] is True
    assert "timed out" in answer["response"]["warnings"][0]


class Crash(Validator[dict[str, Any]]):
    def validate_create(self, obj: dict[str, Any], admission: Admission[Any]) -> None:
        raise KeyError("boom")


async def test_crashing_handler_answers_internal_error_without_details() -> None:
    answer = await validating(Crash(), codec=RAW).review(request(thing(rps=1)))
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["reason"] == "InternalError"
    assert "boom" not in json.dumps(answer)


def test_default_handler_budget_is_one_second_under_the_api_server_timeout() -> None:
    assert validating(RpsCap(), timeout_seconds=10).budget == 9
    assert validating(RpsCap(), timeout_seconds=1).budget == 0.5


class Effects(Validator[dict[str, Any]]):
    def __init__(self) -> None:
        self.ran: list[str] = []

    def validate_create(self, obj: dict[str, Any], admission: Admission[Any]) -> None:
        async def effect() -> None:
            self.ran.append(obj["metadata"]["name"])
        admission.on_commit(effect)


async def test_side_effects_run_only_when_not_dry_run() -> None:
    effects = Effects()
    hook = validating(effects, codec=RAW, side_effects="NoneOnDryRun")
    dry = await hook.review(request(thing(rps=1), dry_run=True))
    assert dry["response"]["allowed"] is True
    assert effects.ran == []
    real = await hook.review(request(thing(rps=1)))
    assert real["response"]["allowed"] is True
    assert effects.ran == ["a"]


async def test_side_effect_in_a_webhook_declaring_none_is_refused() -> None:
    effects = Effects()
    answer = await validating(effects, codec=RAW, side_effects="None").review(
        request(thing(rps=1)))
    assert answer["response"]["allowed"] is False
    assert effects.ran == []


class SetScheme:
    async def default(self, obj: Thing, admission: Admission[Thing]) -> None:
        if "scheme" not in obj.spec.model_fields_set:
            obj.spec.scheme = "https"


def apply_patch(raw: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    return jsonpatch.apply_patch(raw, ops)


async def test_defaulter_patch_is_the_difference_of_the_typed_object() -> None:
    hook = MutatingWebhook(name="m.kuar.com", path="/m", rules=(RULE,),
                           codec=Codec.of(Thing), defaulter=SetScheme())
    raw = thing(rps=5)
    answer = await hook.review(request(raw))
    response = answer["response"]
    assert response["allowed"] is True
    ops = json.loads(base64.b64decode(response["patch"]))
    # creationTimestamp: null is not "removed": only the real change is sent
    assert ops == [{"op": "add", "path": "/spec/scheme", "value": "https"}]
    assert apply_patch(raw, response)["spec"] == {"rps": 5, "scheme": "https"}


async def test_defaulter_without_change_sends_no_patch() -> None:
    hook = MutatingWebhook(name="m.kuar.com", path="/m", rules=(RULE,),
                           codec=Codec.of(Thing), defaulter=SetScheme())
    answer = await hook.review(request(thing(rps=5, scheme="http")))
    assert "patch" not in answer["response"]
    assert answer["response"]["allowed"] is True


async def test_defaulter_may_return_a_replacement_dict() -> None:
    class Replace:
        def default(self, obj: dict[str, Any], admission: Admission[Any]) -> dict[str, Any]:
            return {**obj, "metadata": {**obj["metadata"], "labels": {"a": "b"}}}

    hook = MutatingWebhook(name="m.kuar.com", path="/m", rules=(RULE,), defaulter=Replace())
    raw = thing(rps=1)
    answer = await hook.review(request(raw))
    assert apply_patch(raw, answer["response"])["metadata"]["labels"] == {"a": "b"}


async def test_defaulter_ignores_delete() -> None:
    hook = MutatingWebhook(name="m.kuar.com", path="/m", rules=(RULE,), defaulter=SetScheme())
    answer = await hook.review(request(None, operation="DELETE", old=thing(rps=1)))
    assert answer["response"] == {"uid": answer["response"]["uid"], "allowed": True}


def test_json_patch_skips_equal_members_and_prefixes_paths() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from kuar.webhook.admission import _without_nulls, json_patch

    values = st.recursive(st.none() | st.integers(0, 3) | st.text("ab/~", max_size=3),
                          lambda c: st.lists(c, max_size=3)
                          | st.dictionaries(st.text("ab/~", max_size=3), c, max_size=3),
                          max_leaves=10)
    docs = st.dictionaries(st.text("ab/~", max_size=3), values, max_size=4)

    @settings(max_examples=300, deadline=None)
    @given(src=docs, dst=docs)
    def check(src: dict[str, Any], dst: dict[str, Any]) -> None:
        import copy

        ops = json_patch(src, dst)
        # null and absent are the same to Kubernetes, so they are equal here too
        patched = jsonpatch.apply_patch(copy.deepcopy(src), ops)
        assert _without_nulls(patched) == _without_nulls(dst)
        if _without_nulls(src) == _without_nulls(dst):
            assert ops == []

    check()
