"""LoadTest webhooks on the real API server: it does the TLS handshake and calls them by URL."""

from __future__ import annotations

import json
import time

import pytest

from kuar.client import ApiError, Client, Invalid
from kuar.testing.pytest_plugin import Kubectl
from kuar.webhook import SelfSignedSource
from kuar_loadtest.api.conversion import V2_FIELDS
from kuar_loadtest.webhooks import LoadTestWebhookSettings
from tests.integration.webhook.conftest import loadtest, loadtest_webhooks

pytestmark = pytest.mark.controlplane

SETTINGS = LoadTestWebhookSettings(max_requests_per_second=50_000)


def v1_path(ns: str, name: str = "") -> str:
    return f"/apis/beta.kuar.com/v1/namespaces/{ns}/loadtests" + (f"/{name}" if name else "")


def v2_path(ns: str, name: str = "") -> str:
    return f"/apis/beta.kuar.com/v2/namespaces/{ns}/loadtests" + (f"/{name}" if name else "")


async def test_generated_crd_with_webhooks_rejects_defaults_and_converts(
    admin: Client, ns: str, kubectl_wh: Kubectl
) -> None:
    async with loadtest_webhooks(admin, SelfSignedSource(), settings=SETTINGS):
        # an invalid service name: the schema allows it, the webhook does not
        with pytest.raises(ApiError) as info:
            await admin.request("POST", v1_path(ns), body=loadtest("bad", service="My_Service"))
        err = info.value
        assert isinstance(err, Invalid)
        assert err.message.startswith(
            'admission webhook "validator.kuar.com" denied the request: spec.target.service: '
            'Invalid value: "My_Service": a DNS-1035 label')
        assert [c.field for c in err.causes] == ["spec.target.service"]

        # above the configurable cap (the schema's maximum is 1,000,000)
        with pytest.raises(Invalid) as info2:
            await admin.request("POST", v1_path(ns),
                                body=loadtest("fast", requestsPerSecond=60_000))
        assert "spec.load.requestsPerSecond: Invalid value: 60000: must be at most 50000" in \
            info2.value.message

        # update is validated too
        created = await admin.request("POST", v1_path(ns), body=loadtest("ok"))
        created["spec"]["service"] = "Not-Valid"
        with pytest.raises(Invalid) as info3:
            await admin.request("PUT", v1_path(ns, "ok"), body=created)
        assert "spec.target.service" in info3.value.message

        # without scheme: comes back with the defaults; port and workers stay for the controller
        obj = await admin.request("POST", v1_path(ns),
                                  body=loadtest("plain", scheme=None, paths=None))
        assert obj["spec"]["scheme"] == "http"
        assert obj["spec"]["paths"] == ["/"]
        assert "port" not in obj["spec"] and "workers" not in obj["spec"]
        https = await admin.request("POST", v1_path(ns), body=loadtest("secure", port=443))
        assert https["spec"]["port"] == 443

        # v1 and v2 reads of one object agree
        as_v1 = await admin.request("GET", v1_path(ns, "secure"))
        as_v2 = await admin.request("GET", v2_path(ns, "secure"))
        assert as_v2["apiVersion"] == "beta.kuar.com/v2"
        assert as_v2["metadata"]["uid"] == as_v1["metadata"]["uid"]
        assert as_v2["metadata"]["resourceVersion"] == as_v1["metadata"]["resourceVersion"]
        target, load = as_v2["spec"]["target"], as_v2["spec"]["load"]
        assert target == {k: as_v1["spec"][k] for k in ("service", "scheme", "port", "paths")}
        assert load == {k: as_v1["spec"][k] for k in ("requestsPerSecond", "duration")}

        # kubectl reads the v2 version by its fully qualified name
        out = kubectl_wh("get", "loadtests.v2.beta.kuar.com", "-n", ns, "-o", "json")
        items = {i["metadata"]["name"]: i for i in json.loads(out.stdout)["items"]}
        assert items["secure"]["apiVersion"] == "beta.kuar.com/v2"
        assert items["secure"]["spec"]["target"]["service"] == "my-service"
        table = kubectl_wh("get", "loadtests.v2.beta.kuar.com", "-n", ns).stdout
        assert "my-service" in table and "1000" in table


async def test_v2_only_fields_survive_a_round_trip_through_storage(
    admin: Client, ns: str
) -> None:
    async with loadtest_webhooks(admin, SelfSignedSource(), settings=SETTINGS):
        body = {"apiVersion": "beta.kuar.com/v2", "kind": "LoadTest",
                "metadata": {"name": "v2made", "labels": {"team": "a"}},
                "spec": {"target": {"service": "web", "scheme": "https", "paths": ["/a"],
                                    "headers": {"X-Test": "1"}},
                         "load": {"requestsPerSecond": 20, "workers": 2, "duration": "30s",
                                  "rampUp": "10s"}}}
        created = await admin.request("POST", v2_path(ns), body=body)
        assert created["spec"]["target"]["headers"] == {"X-Test": "1"}
        stored = await admin.request("GET", v1_path(ns, "v2made"))  # the v1 view
        assert stored["spec"]["service"] == "web"
        assert stored["spec"]["duration"] == "30s" and "port" not in stored["spec"]
        assert json.loads(stored["metadata"]["annotations"][V2_FIELDS]) == {
            "load": {"rampUp": "10s"}, "target": {"headers": {"X-Test": "1"}}}
        back = await admin.request("GET", v2_path(ns, "v2made"))
        assert back["spec"]["target"]["headers"] == {"X-Test": "1"}
        assert back["spec"]["load"]["rampUp"] == "10s"
        assert V2_FIELDS not in (back["metadata"].get("annotations") or {})
        assert back["metadata"]["labels"] == {"team": "a"}
        # a v2 write of an invalid object is validated (v2 is what the webhooks see)
        bad = {**body, "metadata": {"name": "v2bad"}}
        bad["spec"] = {**body["spec"], "target": {**body["spec"]["target"], "service": "X"}}
        with pytest.raises(Invalid) as info:
            await admin.request("POST", v2_path(ns), body=bad)
        assert "spec.target.service" in info.value.message


async def test_seed_crd_gets_every_denial_from_the_webhook(admin: Client, ns: str) -> None:
    # The seed's v1 schema has no constraints at all: every check below is the webhook's
    # (on the v2 object the API server converts to; the denial names the v2 field).
    async with loadtest_webhooks(admin, SelfSignedSource(), crd="seed", settings=SETTINGS):
        cases = {
            "spec.target.scheme": loadtest("a", scheme="ftp"),
            "spec.load.requestsPerSecond": loadtest("b", requestsPerSecond=0),
            "spec.target.paths[1]": loadtest("c", paths=["/ok", "nope"]),
            "spec.target.service": loadtest("d", service="-bad-"),
        }
        for field, body in cases.items():
            with pytest.raises(Invalid) as info:
                await admin.request("POST", v1_path(ns), body=body)
            assert field in [c.field for c in info.value.causes], info.value.message
            assert "denied the request" in info.value.message
        # the seed's own example object passes; scheme defaults when left out
        ok = await admin.request("POST", v1_path(ns), body=loadtest("my-loadtest"))
        assert ok["spec"]["scheme"] == "https"
        plain = await admin.request("POST", v1_path(ns), body=loadtest("plain", scheme=None))
        assert plain["spec"]["scheme"] == "http"


async def test_dry_run_create_reaches_the_webhook_without_persisting(
    admin: Client, ns: str
) -> None:
    async with loadtest_webhooks(admin, SelfSignedSource(), settings=SETTINGS):
        answer = await admin.request("POST", v1_path(ns), body=loadtest("dry", scheme=None),
                                     params={"dryRun": "All"})
        assert answer["spec"]["scheme"] == "http"
        with pytest.raises(Invalid) as info:
            await admin.request("POST", v1_path(ns), body=loadtest("dry2", service="A"),
                                params={"dryRun": "All"})
        assert 'admission webhook "validator.kuar.com" denied' in info.value.message
        listed = await admin.request("GET", v1_path(ns))
        assert listed["items"] == []


async def test_validation_latency_through_the_api_server_is_small(
    admin: Client, ns: str
) -> None:
    async with loadtest_webhooks(admin, SelfSignedSource(), settings=SETTINGS):
        started = time.perf_counter()
        for i in range(20):
            await admin.request("POST", v1_path(ns), body=loadtest(f"lt-{i}"))
        per_create = (time.perf_counter() - started) / 20
        assert per_create < 0.5


async def test_paths_that_would_break_the_request_line_are_denied_naming_the_field(
    admin: Client, ns: str
) -> None:
    # Issue 14, finding 3: CR/LF would inject headers into the worker's requests; the schema's
    # pattern (^/) lets them through, the webhook does not. Also through v2 (after conversion).
    async with loadtest_webhooks(admin, SelfSignedSource(), settings=SETTINGS):
        for i, bad in enumerate(["/a\r\nX-Injected: 1", "/a b", "/a\tb", "/\x00"]):
            with pytest.raises(Invalid) as info:
                await admin.request("POST", v1_path(ns),
                                    body=loadtest(f"crlf-{i}", paths=["/ok", bad]))
            message = info.value.message
            assert message.startswith('admission webhook "validator.kuar.com" denied the '
                                      "request: spec.target.paths[1]: Invalid value: "), message
            assert "control characters" in message and "\r" not in message
            assert [c.field for c in info.value.causes] == ["spec.target.paths[1]"]
        v2 = {"apiVersion": "beta.kuar.com/v2", "kind": "LoadTest",
              "metadata": {"name": "crlf-v2"},
              "spec": {"target": {"service": "web", "paths": ["/x\r\nHost: evil"]},
                       "load": {"requestsPerSecond": 5}}}
        with pytest.raises(Invalid) as info2:
            await admin.request("POST", v2_path(ns), body=v2)
        assert "spec.target.paths[0]" in info2.value.message
        # non-ASCII is admitted and stored as written; the worker percent-encodes it
        ok = await admin.request("POST", v1_path(ns), body=loadtest("euro", paths=["/€"]))
        assert ok["spec"]["paths"] == ["/€"]
