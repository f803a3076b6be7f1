"""Declared RBAC rules become single SelfSubjectAccessReview checks."""

from __future__ import annotations

from kuar.client import Permission, permissions_for
from kuar.resources.rbac import PolicyRule


def test_rules_expand_to_one_check_per_verb_resource_and_name() -> None:
    rules = [
        PolicyRule(group="coordination.k8s.io", resources=("leases",),
                   verbs=("create", "get", "watch"), resource_names=("lease-a",), why="lead"),
        PolicyRule(group="certificates.k8s.io",
                   resources=("certificatesigningrequests/approval",), verbs=("update",)),
    ]
    checks = permissions_for(rules, "kuar-system")
    assert [(p.verb, p.resource, p.subresource, p.name) for p in checks] == [
        ("create", "leases", "", None),       # create cannot name an object
        ("get", "leases", "", "lease-a"),
        ("watch", "leases", "", "lease-a"),   # a watch by metadata.name field selector
        ("update", "certificatesigningrequests", "approval", None),
    ]
    assert all(p.namespace == "kuar-system" for p in checks)
    assert str(checks[1]) == ("get leases.coordination.k8s.io 'lease-a' in namespace "
                              "kuar-system (lead)")
    assert str(Permission(verb="create", group="batch", resource="jobs")) == "create jobs.batch"
