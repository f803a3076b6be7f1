"""Webhook configuration generation: by Service and by URL, every field explicit."""

from __future__ import annotations

import base64

import pytest

from kuar.webhook import (
    ServiceTarget,
    UrlTarget,
    conversion_stanza,
    find_webhooks,
    webhook_configurations,
)
from kuar_loadtest import webhooks as lt_webhooks


def test_loadtest_configurations_by_service_reference() -> None:
    admission, conversions = find_webhooks("kuar_loadtest.webhooks")
    assert [w.name for w in admission] == ["defaulter.kuar.com", "validator.kuar.com"]
    assert len(conversions) == 1
    target = ServiceTarget(namespace="kuar-system", name="kuar-webhook")
    configs = webhook_configurations(admission, target, ca_bundle=b"CA")
    assert [(c["kind"], c["metadata"]["name"]) for c in configs] == [
        ("MutatingWebhookConfiguration", "kuar-defaulter"),
        ("ValidatingWebhookConfiguration", "kuar-validator")]
    validating = configs[1]
    assert validating["apiVersion"] == "admissionregistration.k8s.io/v1"
    [hook] = validating["webhooks"]
    assert hook == {
        "name": "validator.kuar.com",
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"service": {"namespace": "kuar-system", "name": "kuar-webhook",
                                     "path": "/validate-beta-kuar-com-v2-loadtest",
                                     "port": 443},
                         "caBundle": base64.b64encode(b"CA").decode()},
        "rules": [{"apiGroups": ["beta.kuar.com"], "apiVersions": ["v2"],
                   "resources": ["loadtests"], "operations": ["CREATE", "UPDATE"],
                   "scope": "Namespaced"}],
        "failurePolicy": "Ignore", "sideEffects": "None", "timeoutSeconds": 5,
        "matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {},
    }
    mutating = configs[0]["webhooks"][0]
    assert mutating["reinvocationPolicy"] == "Never"
    assert mutating["clientConfig"]["service"]["path"] == "/mutate-beta-kuar-com-v2-loadtest"
    assert target.dns_names == ["kuar-webhook.kuar-system.svc",
                                "kuar-webhook.kuar-system.svc.cluster.local"]


def test_configurations_by_url_with_selectors_and_match_conditions() -> None:
    from dataclasses import replace

    from kuar.webhook import MatchCondition

    hook = replace(lt_webhooks.validator,
                   namespace_selector={"matchLabels": {"team": "a"}},
                   object_selector={"matchExpressions": [
                       {"key": "skip", "operator": "DoesNotExist"}]},
                   match_conditions=(MatchCondition(
                       name="not-system", expression="!request.userInfo.username.startsWith("
                                                     "'system:')"),))
    [config] = webhook_configurations([hook], UrlTarget(base_url="https://127.0.0.1:9443/"))
    [entry] = config["webhooks"]
    assert entry["clientConfig"] == {
        "url": "https://127.0.0.1:9443/validate-beta-kuar-com-v2-loadtest"}
    assert entry["namespaceSelector"] == {"matchLabels": {"team": "a"}}
    assert entry["objectSelector"]["matchExpressions"][0]["key"] == "skip"
    assert entry["matchConditions"][0]["name"] == "not-system"


def test_url_target_must_be_https() -> None:
    with pytest.raises(ValueError, match="https"):
        UrlTarget(base_url="http://127.0.0.1:9443")


def test_conversion_stanza() -> None:
    stanza = conversion_stanza(ServiceTarget(namespace="n", name="s"), ca_bundle=b"x")
    assert stanza == {"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1"],
        "clientConfig": {"service": {"namespace": "n", "name": "s", "path": "/convert",
                                     "port": 443}, "caBundle": "eA=="}}}


def test_duplicate_webhook_names_in_one_configuration_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        webhook_configurations([lt_webhooks.validator, lt_webhooks.validator],
                               UrlTarget(base_url="https://x"))


def test_bad_webhook_declarations_are_refused() -> None:
    from dataclasses import replace

    with pytest.raises(ValueError, match="path"):
        replace(lt_webhooks.validator, path="validate")
    with pytest.raises(ValueError, match="timeout"):
        replace(lt_webhooks.validator, timeout_seconds=31)
