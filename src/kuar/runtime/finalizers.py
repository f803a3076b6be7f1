"""Finalizers: run cleanup before an object is deleted, with the expected flow built in.

Place in the pipeline: called from a reconciler. Known as ``controllerutil.AddFinalizer`` /
``RemoveFinalizer`` in controller-runtime and ``kube::runtime::finalizer`` in kube-rs, whose
flow :func:`finalizer` follows.

The flow (one reconcile of an object that has this controller's finalizer ``name``):

1. The object is not being deleted and lacks the finalizer: add it (a patch guarded by the
   object's resourceVersion), then run ``apply``. Adding it first guarantees that ``cleanup``
   runs for anything ``apply`` creates, even if the object is deleted right after.
2. The object is not being deleted and has the finalizer: run ``apply``.
3. The object is being deleted (``deletionTimestamp`` set) and has the finalizer: run
   ``cleanup``; when it returns done (not a requeue), remove the finalizer. The API server
   deletes the object once no finalizer is left.
4. The object is being deleted and lacks the finalizer: nothing to do.

Guarantees: the finalizer is removed only after ``cleanup`` succeeded; adding and removing
are guarded by resourceVersion, so a concurrent change makes them fail with
:class:`kuar.client.Conflict` (the reconcile is retried) instead of losing someone's update.
``cleanup`` may run more than once (a crash after cleanup, before removal): make it
idempotent. Errors: whatever ``apply``/``cleanup`` raise, and API errors of the patches
(``NotFound`` on removal is ignored: the object is already gone).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kuar.client import Api, Client, NotFound, ResourceInfo
from kuar.resources import DynamicObject, ObjectMeta
from kuar.runtime.reconcile import Result

Step = Callable[[], Awaitable[Result | None]]
Meta = Mapping[str, Any] | ObjectMeta
"""An object's metadata: a mapping with JSON names (a cached view's) or a typed object's."""


def _fields(meta: Meta) -> Mapping[str, Any]:
    if isinstance(meta, ObjectMeta):
        return meta.model_dump(by_alias=True, exclude_none=True, exclude={"managed_fields"})
    return meta


def has_finalizer(meta: Meta, name: str) -> bool:
    """Whether ``metadata.finalizers`` contains ``name``."""
    return name in (_fields(meta).get("finalizers") or ())


async def _patch_finalizers(
    client: Client, resource: ResourceInfo, meta: Mapping[str, Any], finalizers: list[str]
) -> dict[str, Any]:
    body = {
        "metadata": {
            "finalizers": finalizers,
            # A resourceVersion in a patch is a precondition: 409 if the object moved on.
            "resourceVersion": meta["resourceVersion"],
        }
    }
    api = Api(client, DynamicObject, resource=resource, field_validation=None)
    patched = await api.patch(meta["name"], body, namespace=meta.get("namespace") or None)
    return patched.encode()


async def add_finalizer(
    client: Client, resource: ResourceInfo, meta: Meta, name: str
) -> dict[str, Any] | None:
    """Add ``name`` to the object's finalizers; returns the patched object (``None`` if present)."""
    meta = _fields(meta)
    current = list(meta.get("finalizers") or ())
    if name in current:
        return None
    return await _patch_finalizers(client, resource, meta, [*current, name])


async def remove_finalizer(
    client: Client, resource: ResourceInfo, meta: Meta, name: str
) -> dict[str, Any] | None:
    """Remove ``name`` from the object's finalizers; ``None`` if absent or the object is gone."""
    meta = _fields(meta)
    current = list(meta.get("finalizers") or ())
    if name not in current:
        return None
    try:
        return await _patch_finalizers(client, resource, meta, [f for f in current if f != name])
    except NotFound:
        return None


async def finalizer(
    client: Client,
    resource: ResourceInfo,
    meta: Meta,
    name: str,
    *,
    apply: Step,
    cleanup: Step,
) -> Result:
    """Run ``apply`` or ``cleanup`` for the object whose metadata is ``meta`` (see the flow).

    ``meta`` is the object's metadata as read (``obj.metadata`` of a cached view or of a typed
    object); ``name`` is this controller's finalizer, e.g. ``"example.com/cleanup"``.
    """
    meta = _fields(meta)
    deleting = bool(meta.get("deletionTimestamp"))
    present = has_finalizer(meta, name)
    if deleting:
        if not present:
            return Result.done()
        outcome = await cleanup() or Result.done()
        if outcome.requeue_after is not None or outcome.rate_limited:
            return outcome  # cleanup is not finished; keep the finalizer
        await remove_finalizer(client, resource, meta, name)
        return outcome
    if not present:
        await add_finalizer(client, resource, meta, name)
    return await apply() or Result.done()
