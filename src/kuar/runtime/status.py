"""Writing status: a merge patch, or a read-modify-write that retries on conflicts.

Place in the pipeline: called by reconcilers at the end of a reconcile. Known as
``client.Status().Update/Patch`` plus ``retry.RetryOnConflict`` in controller-runtime and
client-go, and ``Api::patch_status``/``replace_status`` in kube-rs.

Guarantees: :func:`update_status` writes with the object's resourceVersion (optimistic
concurrency), so it never overwrites a status it has not seen; on 409 Conflict it reads the
object again and re-applies ``mutate``, up to ``attempts`` times. It skips the write when
``mutate`` leaves the status unchanged, so a reconcile that finds nothing new causes no event.
Errors: :class:`kuar.client.Conflict` after the last attempt; :class:`kuar.client.NotFound`
when the object is gone; other API errors as raised by the client.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from typing import Any

from kuar.client import Api, Client, Conflict, ResourceInfo
from kuar.resources import DynamicObject
from kuar.runtime.objects import ObjectKey, thaw


def _api(client: Client, resource: ResourceInfo) -> Api[DynamicObject]:
    # No fieldValidation: the server prunes unknown status fields, as a plain PUT/PATCH does.
    return Api(client, DynamicObject, resource=resource, field_validation=None)


async def patch_status(
    client: Client,
    resource: ResourceInfo,
    key: ObjectKey,
    status: Mapping[str, Any],
    *,
    subresource: bool = True,
) -> dict[str, Any]:
    """Merge-patch ``status`` into the object's status (no conflict check; fields you pass win).

    ``subresource=False`` for kinds without a status subresource.
    """
    body = {"status": thaw(status) if not isinstance(status, dict) else status}
    patched = await _api(client, resource).patch(
        key.name, body, namespace=key.namespace or None,
        subresource="status" if subresource else None,
    )
    return patched.encode()


async def update_status(
    client: Client,
    resource: ResourceInfo,
    key: ObjectKey,
    mutate: Callable[[dict[str, Any]], None],
    *,
    current: Mapping[str, Any] | None = None,
    attempts: int = 5,
    subresource: bool = True,
) -> dict[str, Any]:
    """Read the object, let ``mutate`` change its ``status`` (in place), write it back.

    ``current`` (e.g. the cached object) saves the first read; a stale one only costs a
    conflict and a retry. Returns the object as written (or as read when nothing changed).
    """
    api = _api(client, resource)
    obj: dict[str, Any] | None = thaw(current) if current is not None else None
    for attempt in range(attempts):
        if obj is None:
            obj = (await api.get(key.name, namespace=key.namespace or None)).encode()
        before = thaw(obj.get("status"))
        obj.setdefault("status", {})
        mutate(obj)
        if obj.get("status") == (before or {}):
            return obj
        try:
            written = await api.replace(
                DynamicObject.model_validate(obj), namespace=key.namespace or None,
                subresource="status" if subresource else None,
            )
            return written.encode()
        except Conflict:
            if attempt == attempts - 1:
                raise
            obj = None
            # client-go's DefaultRetry: ~10 ms with jitter, so competing writers spread out.
            await asyncio.sleep(0.01 * (1 + random.random()))  # noqa: S311
    raise AssertionError("unreachable")
