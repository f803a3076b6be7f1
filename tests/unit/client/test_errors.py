"""The error tree maps HTTP status and Status reason to the most specific class."""

from __future__ import annotations

import pytest

from kuar.client.errors import (
    AlreadyExists,
    ApiError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServerError,
    ServerTimeout,
    TooManyRequests,
    Unauthorized,
    error_from_status,
)


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (401, "Unauthorized", Unauthorized),
        (403, "Forbidden", Forbidden),
        (404, "NotFound", NotFound),
        (409, "Conflict", Conflict),
        (409, "AlreadyExists", AlreadyExists),
        (410, "Expired", Gone),
        (422, "Invalid", Invalid),
        (429, "TooManyRequests", TooManyRequests),
        (500, "InternalError", ServerError),
        (504, "Timeout", ServerTimeout),
        (500, "ServerTimeout", ServerTimeout),
        (418, "Teapot", ApiError),
    ],
)
def test_error_class_follows_code_and_reason(code: int, reason: str, cls: type[ApiError]) -> None:
    err = error_from_status(code, {"kind": "Status", "reason": reason, "message": "m"})
    assert type(err) is cls
    assert err.code == code and err.message == "m"


def test_already_exists_is_a_conflict() -> None:
    assert isinstance(error_from_status(409, {"reason": "AlreadyExists"}), Conflict)


def test_invalid_carries_field_causes() -> None:
    status = {
        "reason": "Invalid",
        "message": "LoadTest.beta.kuar.com \"x\" is invalid",
        "details": {"causes": [
            {"field": "spec.requestsPerSecond", "reason": "FieldValueInvalid",
             "message": "must be greater than 0"},
        ]},
    }
    err = error_from_status(422, status)
    assert isinstance(err, Invalid)
    assert err.causes[0].field == "spec.requestsPerSecond"
    assert "must be greater than 0" in err.causes[0].message


def test_retry_after_comes_from_header_or_details() -> None:
    assert error_from_status(429, {}, retry_after="7").retry_after == 7.0
    assert error_from_status(429, {"details": {"retryAfterSeconds": 3}}).retry_after == 3.0
    assert error_from_status(429, {}, retry_after="soon").retry_after is None


def test_non_json_body_uses_fallback_text() -> None:
    err = error_from_status(502, None, fallback="bad gateway")
    assert isinstance(err, ServerError) and err.message == "bad gateway"
    assert "HTTP 502" in str(err)
