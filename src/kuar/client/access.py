"""Who am I, and may I? SelfSubjectReview and SelfSubjectAccessReview for a process's own identity.

Place in the pipeline: the manager (:mod:`kuar.manager.manager`) asks :func:`missing_access`
before it starts informers and controllers, with the permissions an application declares
(:func:`permissions_for` turns :class:`kuar.resources.rbac.PolicyRule` declarations into
single checks); :func:`whoami` gives the user name a CSR signer must trust. Known as
``kubectl auth can-i`` and ``kubectl auth whoami``.

Guarantees: every check is a ``SelfSubjectAccessReview`` answered by the API server's own
authorizers (RBAC and any other), so the answer is what a real request would get; checks run
concurrently (at most 8 at once). Both review kinds are allowed to every authenticated user by
the default ``system:basic-user`` role, so asking needs no extra permission.
Errors: API and transport errors are raised (the caller decides to retry).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kuar.client.transport import Client
from kuar.resources.rbac import PolicyRule

ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


@dataclass(frozen=True, kw_only=True)
class Permission:
    """One verb on one resource (optionally one namespace, one name), and why it is needed."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str | None = None
    """``None``: in every namespace (or a cluster-scoped resource)."""
    name: str | None = None
    why: str = ""

    def __str__(self) -> str:
        group = f".{self.group}" if self.group else ""
        sub = f"/{self.subresource}" if self.subresource else ""
        name = f" {self.name!r}" if self.name else ""
        where = f" in namespace {self.namespace}" if self.namespace else ""
        why = f" ({self.why})" if self.why else ""
        return f"{self.verb} {self.resource}{group}{sub}{name}{where}{why}"


def permissions_for(rules: Iterable[PolicyRule], namespace: str | None = None
                    ) -> list[Permission]:
    """One :class:`Permission` per verb, resource and resource name of ``rules``.

    ``namespace`` scopes namespaced checks (an operator watching one namespace needs its
    rights there only); ``create`` and ``deletecollection``, which cannot name an object, are
    checked without the rule's resource names (``list`` and ``watch`` keep them: a request with
    a ``metadata.name`` field selector is authorized by name).
    """
    out = []
    for rule in rules:
        for resource in rule.resources:
            base, _, sub = resource.partition("/")
            for verb in rule.verbs:
                nameless = verb in ("create", "deletecollection")
                for name in (rule.resource_names if rule.resource_names and not nameless
                             else (None,)):
                    out.append(Permission(verb=verb, group=rule.group, resource=base,
                                          subresource=sub, namespace=namespace, name=name,
                                          why=rule.why))
    return out


async def can_i(client: Client, permission: Permission) -> bool:
    """Whether this client's identity may do ``permission`` (one SelfSubjectAccessReview)."""
    attributes: dict[str, str] = {"verb": permission.verb, "group": permission.group,
                                  "resource": permission.resource}
    if permission.subresource:
        attributes["subresource"] = permission.subresource
    if permission.namespace:
        attributes["namespace"] = permission.namespace
    if permission.name:
        attributes["name"] = permission.name
    review = await client.request("POST", ACCESS_REVIEWS, body={
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes}})
    return bool((review.get("status") or {}).get("allowed"))


async def missing_access(client: Client, permissions: Sequence[Permission]) -> list[Permission]:
    """The permissions of ``permissions`` this client's identity does not have, in order."""
    gate = asyncio.Semaphore(8)

    async def one(permission: Permission) -> bool:
        async with gate:
            return await can_i(client, permission)

    allowed = await asyncio.gather(*(one(p) for p in permissions))
    return [p for p, ok in zip(permissions, allowed, strict=True) if not ok]


async def whoami(client: Client) -> str:
    """The user name the API server sees for this client (a SelfSubjectReview)."""
    review = await client.request("POST", SUBJECT_REVIEWS, body={
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    return str(review["status"]["userInfo"]["username"])
