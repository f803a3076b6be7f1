"""Which rights the operator checks depends on the parts it runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuar.manager import LeaderElectionSettings
from kuar.webhook import ServiceTarget
from kuar_loadtest.operator import OperatorOptions, WebhookOptions, required_access


def checked(options: OperatorOptions) -> set[tuple[str, str, str | None]]:
    return {(p.verb, p.resource + (f"/{p.subresource}" if p.subresource else ""), p.namespace)
            for p in required_access(options)}


def test_controller_alone_checks_its_rights_in_its_namespace_only() -> None:
    rights = checked(OperatorOptions(namespace="team-a"))
    assert ("create", "jobs", "team-a") in rights and ("list", "services", "team-a") in rights
    assert not any(r[1].startswith(("leases", "certificatesigningrequests")) for r in rights)
    # no Secret is read: a missing body Secret is seen on the pods that mount it
    assert [r for r in rights if r[1] == "secrets"] == []
    assert ("watch", "pods", "team-a") in rights and ("list", "events", "team-a") in rights


def test_leader_election_and_csr_webhooks_add_lease_signer_and_injection_rights() -> None:
    options = OperatorOptions(
        leader_election=LeaderElectionSettings(name="l", namespace="kuar-system"),
        webhooks=WebhookOptions(service=ServiceTarget(namespace="kuar-system",
                                                      name="kuar-webhook")))
    rights = checked(options)
    assert {("update", "leases", "kuar-system"), ("create", "secrets", "kuar-system"),
            ("create", "certificatesigningrequests", None),
            ("update", "certificatesigningrequests/approval", None),
            ("sign", "signers", None),
            ("update", "validatingwebhookconfigurations", None),
            ("update", "customresourcedefinitions", None)} <= rights
    assert options.webhooks is not None
    assert options.webhooks.names() == (["kuar-webhook.kuar-system.svc",
                                         "kuar-webhook.kuar-system.svc.cluster.local"], [])


def test_cert_dir_needs_no_csr_signer_or_injection_rights(tmp_path: Path) -> None:
    hooks = WebhookOptions(url="https://127.0.0.1:9443", cert_dir=tmp_path)
    assert hooks.names() == ([], ["127.0.0.1"]) and not hooks.uses_csr and not hooks.injects
    rights = checked(OperatorOptions(webhooks=hooks))
    assert not any(r[1].startswith(("certificatesigningrequests", "signers",
                                    "validatingwebhookconfigurations")) for r in rights)
    assert not any(r[1] == "secrets" for r in rights)  # no signer: no Secret at all
    with pytest.raises(ValueError, match="exactly one"):
        WebhookOptions()
