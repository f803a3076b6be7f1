"""RBAC declared in code: least privilege enforced, output deterministic."""

from __future__ import annotations

import pytest

from kuar.resources.rbac import PolicyRule, RbacError, RbacRules


def test_wildcards_and_unknown_verbs_are_refused() -> None:
    with pytest.raises(RbacError, match="wildcards"):
        PolicyRule(group="", resources=("*",), verbs=("get",))
    with pytest.raises(RbacError, match="wildcards"):
        PolicyRule(group="apps", resources=("deployments",), verbs=("*",))
    with pytest.raises(RbacError, match="unknown verbs"):
        PolicyRule(group="", resources=("pods",), verbs=("read",))


def test_rules_merge_by_group_and_resources_with_sorted_verbs() -> None:
    rules = RbacRules(name="op", namespace="sys", rules=(
        PolicyRule(group="", resources=("pods",), verbs=("watch", "list")),
        PolicyRule(group="", resources=("pods",), verbs=("get",)),
        PolicyRule(group="batch", resources=("jobs",), verbs=("create",)),
    ))
    assert rules.merged_rules() == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
    ]
    sa, role, binding = rules.manifests()
    assert sa["metadata"] == {"name": "op", "namespace": "sys"}
    assert role["kind"] == "ClusterRole" and binding["kind"] == "ClusterRoleBinding"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "op", "namespace": "sys"}]


def test_namespaced_rules_make_a_role() -> None:
    rules = RbacRules(name="op", namespace="sys", cluster_wide=False, rules=(
        PolicyRule(group="", resources=("configmaps",), verbs=("get",)),))
    _, role, binding = rules.manifests()
    assert role["kind"] == "Role" and role["metadata"]["namespace"] == "sys"
    assert binding["kind"] == "RoleBinding"


def test_namespaced_rules_add_a_role_in_the_components_namespace() -> None:
    rules = RbacRules(name="op", namespace="sys", rules=(
        PolicyRule(group="batch", resources=("jobs",), verbs=("create",)),),
        namespaced_rules=(PolicyRule(group="", resources=("secrets",), verbs=("get",),
                                     resource_names=("ca",)),))
    kinds = [(m["kind"], m["metadata"].get("namespace")) for m in rules.manifests()]
    assert kinds == [("ServiceAccount", "sys"), ("ClusterRole", None),
                     ("ClusterRoleBinding", None), ("Role", "sys"), ("RoleBinding", "sys")]
    role = rules.manifests()[3]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                              "resourceNames": ["ca"]}]
    with pytest.raises(RbacError, match="namespaced_rules"):
        RbacRules(name="op", namespace="sys", cluster_wide=False, rules=(),
                  namespaced_rules=role_rules()).manifests()


def role_rules() -> tuple[PolicyRule, ...]:
    return (PolicyRule(group="", resources=("secrets",), verbs=("get",)),)
