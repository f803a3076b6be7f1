"""RBAC from code: the permissions an operator needs, declared next to it and generated.

Place in the pipeline: an application declares an :class:`RbacRules` (kubebuilder's
``+kubebuilder:rbac`` markers as data); ``kuar generate rbac MODULE`` turns it into a
ServiceAccount, a ClusterRole (or Role) and its binding in ``deploy/``, plus a Role and
RoleBinding in the component's own namespace for ``namespaced_rules`` (access that belongs to
that namespace only: a Lease, a Secret). At run time the same declaration feeds the manager's
access check (:func:`kuar.client.permissions_for`). Pure: no I/O.

Guarantees: output is deterministic (rules merged by API group and resource, verbs sorted), so
generated files are committed and diffed; a rule with a wildcard verb, resource or group is
refused, because generated RBAC must be least privilege.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

KNOWN_VERBS = frozenset({
    "get", "list", "watch", "create", "update", "patch", "delete", "deletecollection",
    "approve", "sign", "bind", "escalate", "impersonate",
})


class RbacError(ValueError):
    """A rule is not least privilege or not valid."""


@dataclass(frozen=True, kw_only=True)
class PolicyRule:
    """Verbs on resources of one API group (``""`` is the core group)."""

    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    resource_names: tuple[str, ...] = ()
    why: str = ""
    """What needs it (kept as a comment next to the rule in docs, not in the manifest)."""

    def __post_init__(self) -> None:
        for value, what in ((self.group, "group"), *((r, "resource") for r in self.resources),
                            *((v, "verb") for v in self.verbs)):
            if "*" in value:
                raise RbacError(f"{what} {value!r}: wildcards are not least privilege")
        unknown = set(self.verbs) - KNOWN_VERBS
        if unknown:
            raise RbacError(f"unknown verbs {sorted(unknown)} for {self.resources}")
        if not self.resources or not self.verbs:
            raise RbacError("a rule needs at least one resource and one verb")


@dataclass(frozen=True, kw_only=True)
class RbacRules:
    """The identity and permissions of one component."""

    name: str
    """Name of the ServiceAccount, the (Cluster)Role and the binding."""
    namespace: str
    """Namespace of the ServiceAccount (and of the Role when ``cluster_wide`` is False)."""
    rules: tuple[PolicyRule, ...]
    cluster_wide: bool = True
    """ClusterRole + ClusterRoleBinding (watch all namespaces) or Role + RoleBinding."""
    labels: dict[str, str] = field(default_factory=dict)
    namespaced_rules: tuple[PolicyRule, ...] = ()
    """Rules granted only in ``namespace`` (a Role and RoleBinding of the same name), beside
    the cluster-wide ones."""

    def merged_rules(self, rules: Iterable[PolicyRule] | None = None) -> list[dict[str, Any]]:
        """Rules merged per (group, resource names, resources) with sorted verbs."""
        merged: dict[tuple[str, tuple[str, ...], tuple[str, ...]], set[str]] = {}
        for rule in self.rules if rules is None else rules:
            key = (rule.group, tuple(sorted(rule.resources)), tuple(sorted(rule.resource_names)))
            merged.setdefault(key, set()).update(rule.verbs)
        out = []
        for (group, resources, names), verbs in sorted(merged.items()):
            item: dict[str, Any] = {"apiGroups": [group], "resources": list(resources),
                                    "verbs": sorted(verbs)}
            if names:
                item["resourceNames"] = list(names)
            out.append(item)
        return out

    def manifests(self) -> list[dict[str, Any]]:
        """ServiceAccount, (Cluster)Role and binding, then Role and RoleBinding, in order.

        The Role and RoleBinding exist only when there are ``namespaced_rules``.
        """
        meta: dict[str, Any] = {"name": self.name}
        if self.labels:
            meta["labels"] = dict(sorted(self.labels.items()))
        ns_meta = {**meta, "namespace": self.namespace}
        role_kind = "ClusterRole" if self.cluster_wide else "Role"
        role_meta = meta if self.cluster_wide else ns_meta
        subjects = [{"kind": "ServiceAccount", "name": self.name, "namespace": self.namespace}]

        def role(kind: str, metadata: dict[str, Any], rules: Iterable[PolicyRule]
                 ) -> list[dict[str, Any]]:
            return [
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
                 "metadata": metadata, "rules": self.merged_rules(rules)},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": f"{kind}Binding",
                 "metadata": metadata,
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind,
                             "name": self.name},
                 "subjects": subjects},
            ]

        out = [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": ns_meta},
               *role(role_kind, role_meta, self.rules)]
        if self.namespaced_rules:
            if not self.cluster_wide:
                raise RbacError(f"{self.name}: namespaced_rules need cluster_wide=True "
                                "(put them in rules instead)")
            out += role("Role", ns_meta, self.namespaced_rules)
        return out


def find_rbac(module: ModuleType) -> list[RbacRules]:
    """Every :class:`RbacRules` defined at the top level of ``module``, by name."""
    found = [v for v in vars(module).values() if isinstance(v, RbacRules)]
    return sorted(found, key=lambda r: r.name)


def render_rbac(rules: Iterable[RbacRules], header: str) -> dict[str, str]:
    """``{file name: YAML}``: one multi-document file per component."""
    import yaml

    files = {}
    for item in rules:
        docs = [yaml.safe_dump(d, sort_keys=False) for d in item.manifests()]
        files[f"{item.name}.rbac.yaml"] = f"# {header}\n" + "---\n".join(docs)
    return files
