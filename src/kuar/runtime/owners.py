"""Owner references: mark a child as controlled by its owner, so changes to it wake the owner.

Place in the pipeline: used by reconcilers when they build children; read back by
:func:`kuar.runtime.handlers.enqueue_owner` (``builder.owns``) and by the API server's garbage
collector, which deletes children when their owner goes. Known as
``controllerutil.SetControllerReference`` in controller-runtime and
``Resource::controller_owner_ref`` in kube-rs.

Errors: :class:`AlreadyOwned` when the child already has a different controller;
``ValueError`` for an owner without name/uid, or a namespaced owner of a child in another
namespace (the garbage collector would delete such a child at once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kuar.client import ResourceInfo
from kuar.resources import OwnerReference, Resource


class AlreadyOwned(ValueError):
    """The child already has a controller owner other than this one."""


def controller_reference(
    owner: Mapping[str, Any], resource: ResourceInfo, *, block_owner_deletion: bool = True
) -> dict[str, Any]:
    """An ``ownerReference`` with ``controller: true`` pointing at ``owner`` (any mapping)."""
    meta = owner.get("metadata") or {}
    name, uid = meta.get("name"), meta.get("uid")
    if not name or not uid:
        raise ValueError("the owner needs metadata.name and metadata.uid (read it from the API)")
    return {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "name": str(name),
        "uid": str(uid),
        "controller": True,
        "blockOwnerDeletion": block_owner_deletion,
    }


def set_controller_reference(
    child: dict[str, Any], owner: Mapping[str, Any], resource: ResourceInfo
) -> dict[str, Any]:
    """Add (or refresh) ``owner`` as the controller of ``child`` (a mutable dict), in place."""
    ref = controller_reference(owner, resource)
    owner_ns = (owner.get("metadata") or {}).get("namespace") or ""
    meta = child.setdefault("metadata", {})
    if resource.namespaced and owner_ns and meta.get("namespace", owner_ns) != owner_ns:
        raise ValueError(
            f"a namespaced owner in {owner_ns!r} cannot own an object in {meta.get('namespace')!r}"
        )
    refs: list[dict[str, Any]] = [dict(r) for r in meta.get("ownerReferences") or []]
    for i, existing in enumerate(refs):
        if existing.get("controller") and existing.get("uid") != ref["uid"]:
            raise AlreadyOwned(
                f"{meta.get('name')} is already controlled by {existing.get('kind')}/"
                f"{existing.get('name')}"
            )
        if existing.get("uid") == ref["uid"]:
            refs[i] = ref
            break
    else:
        refs.append(ref)
    meta["ownerReferences"] = refs
    return child


def owner_reference(owner: Resource, *, block_owner_deletion: bool = True) -> OwnerReference:
    """A typed controller ``ownerReference`` to a typed ``owner``.

    For a typed child's metadata: ``ObjectMeta(owner_references=[owner_reference(parent)])``.
    """
    meta = {"metadata": {"name": owner.metadata.name, "uid": owner.metadata.uid}}
    return OwnerReference.model_validate(controller_reference(
        meta, type(owner).resource_info(), block_owner_deletion=block_owner_deletion))


def is_controlled_by(
    child: Mapping[str, Any] | Resource, owner: Mapping[str, Any] | Resource
) -> bool:
    """Whether ``child``'s controller reference points at ``owner`` (by uid).

    Either may be a cached view, a dict or a typed object.
    """
    uid = (owner.metadata.uid if isinstance(owner, Resource)
           else (owner.get("metadata") or {}).get("uid"))
    if isinstance(child, Resource):
        return any(r.controller and r.uid == uid for r in child.metadata.owner_references or ())
    for ref in (child.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller") and ref.get("uid") == uid:
            return True
    return False
