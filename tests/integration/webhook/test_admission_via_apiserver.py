"""Generic admission behaviour seen from the real API server: dry run, timeouts, warnings."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from kuar.client import ApiError, Client
from kuar.webhook import (
    RAW,
    Admission,
    AdmissionRule,
    MatchCondition,
    SelfSignedSource,
    UrlTarget,
    ValidatingWebhook,
    Validator,
    WebhookServer,
    WebhookServerSettings,
    apply_configurations,
    delete_configurations,
    webhook_configurations,
)

pytestmark = pytest.mark.controlplane

CONFIGMAPS = AdmissionRule(api_groups=("",), api_versions=("v1",), resources=("configmaps",),
                  operations=("CREATE",))


class Recorder(Validator[dict[str, Any]]):
    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []
        self.effects: list[str] = []

    def validate_create(self, obj: dict[str, Any], admission: Admission[Any]) -> None:
        name = obj["metadata"]["name"]
        self.seen.append((name, admission.dry_run))

        def effect() -> None:
            self.effects.append(name)
        admission.on_commit(effect)


class Sleeper(Validator[dict[str, Any]]):
    async def validate_create(self, obj: dict[str, Any], admission: Admission[Any]) -> None:
        await asyncio.sleep(20)


async def test_dry_run_and_slow_handlers_as_the_api_server_sees_them(
    admin: Client, ns: str
) -> None:
    recorder = Recorder()
    only_ns = {"matchLabels": {"kubernetes.io/metadata.name": ns}}
    hooks = [
        ValidatingWebhook(name="record.kuar.dev", path="/record", rules=(CONFIGMAPS,),
                          codec=RAW, validator=recorder, side_effects="NoneOnDryRun",
                          namespace_selector=only_ns, configuration="kuar-test-record"),
        ValidatingWebhook(name="slow-fail.kuar.dev", path="/slow-fail", rules=(CONFIGMAPS,),
                          codec=RAW, validator=Sleeper(), timeout_seconds=3,
                          handler_timeout=0.3, failure_policy="Fail",
                          namespace_selector=only_ns, configuration="kuar-test-slow",
                          match_conditions=(MatchCondition(
                              name="slow-fail", expression="object.metadata.name == 'fail'"),)),
        ValidatingWebhook(name="slow-ignore.kuar.dev", path="/slow-ignore",
                          rules=(CONFIGMAPS,), codec=RAW, validator=Sleeper(),
                          timeout_seconds=3, handler_timeout=0.3, failure_policy="Ignore",
                          namespace_selector=only_ns, configuration="kuar-test-slow",
                          match_conditions=(MatchCondition(
                              name="slow-ignore",
                              expression="object.metadata.name == 'ignore'"),)),
    ]
    cert = await SelfSignedSource().fetch()
    server = WebhookServer(webhooks=hooks, certificates=cert,
                           settings=WebhookServerSettings(host="127.0.0.1", port=0))
    async with server:
        configs = webhook_configurations(hooks, UrlTarget(base_url=server.url),
                                         ca_bundle=cert.ca_pem)
        await apply_configurations(admin, configs)
        try:
            path = f"/api/v1/namespaces/{ns}/configmaps"

            def cm(name: str) -> dict[str, Any]:
                return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}

            await admin.request("POST", path, body=cm("dry"), params={"dryRun": "All"})
            assert recorder.seen == [("dry", True)]
            assert recorder.effects == []
            await admin.request("POST", path, body=cm("real"))
            assert recorder.seen[-1] == ("real", False)
            assert recorder.effects == ["real"]

            # a slow handler answers by its failure policy well before the API server's 3 s
            started = time.perf_counter()
            with pytest.raises(ApiError) as info:
                await admin.request("POST", path, body=cm("fail"))
            assert time.perf_counter() - started < 2.5
            assert info.value.code == 500
            assert "handler timed out after 0.3 s" in info.value.message
            started = time.perf_counter()
            created = await admin.request("POST", path, body=cm("ignore"))
            assert time.perf_counter() - started < 2.5
            assert created["metadata"]["name"] == "ignore"
        finally:
            await delete_configurations(admin, configs)
