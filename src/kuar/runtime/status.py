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

from kuar.client import Client, Conflict, ResourceInfo
from kuar.client.transport import MERGE_PATCH
from kuar.runtime.objects import ObjectKey, thaw


def _status_path(resource: ResourceInfo, key: ObjectKey, subresource: bool) -> str:
    path = resource.path(key.namespace or None, key.name)
    return f"{path}/status" if subresource else path


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
    result: dict[str, Any] = await client.request(
        "PATCH", _status_path(resource, key, subresource), body=body, content_type=MERGE_PATCH
    )
    return result


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
    obj: dict[str, Any] | None = thaw(current) if current is not None else None
    for attempt in range(attempts):
        if obj is None:
            obj = await client.request("GET", resource.path(key.namespace or None, key.name))
        assert obj is not None
        before = thaw(obj.get("status"))
        obj.setdefault("status", {})
        mutate(obj)
        if obj.get("status") == (before or {}):
            return obj
        try:
            written: dict[str, Any] = await client.request(
                "PUT", _status_path(resource, key, subresource), body=obj
            )
            return written
        except Conflict:
            if attempt == attempts - 1:
                raise
            obj = None
            # client-go's DefaultRetry: ~10 ms with jitter, so competing writers spread out.
            await asyncio.sleep(0.01 * (1 + random.random()))  # noqa: S311
    raise AssertionError("unreachable")
