"""Typed access to one kind: ``Api[T]`` verbs that take and return typed objects.

Place in the pipeline: between callers (controllers, examples, the CLI) and
:class:`kuar.client.Client`; encodes :class:`kuar.resources.Resource` objects to JSON and
decodes answers back. Known as ``kube::Api<K>`` in kube-rs and the typed ``client.Client`` of
controller-runtime.

Guarantees:
- every verb returns a typed object of the Api's class (``delete`` may return a
  :class:`~kuar.resources.Status` when the object is already gone from storage), and raises
  the error tree of :mod:`kuar.client.errors` (``NotFound``, ``Conflict``, ``AlreadyExists``,
  ``Invalid`` with causes, ``Forbidden``, ``Gone``, ``TooManyRequests``...).
- ``replace`` and ``replace_status`` send ``metadata.resourceVersion``: a stale object raises
  :class:`~kuar.client.errors.Conflict` (optimistic concurrency).
- writes use ``fieldValidation=Strict`` by default: a field the server's schema does not know
  (a typo, or a field of a newer model) is an ``Invalid``/``BadRequest`` error instead of being
  silently pruned.
- :meth:`Api.apply` sends only the fields set on the object (server-side apply owns exactly
  those); applying the same object twice changes nothing on the server.
- :meth:`Api.watch` raises an ``ERROR`` event as the matching error (410 -> ``Gone``), so a
  caller lists again exactly as after an HTTP 410.
Caveats: :meth:`Api.list_all` follows ``continue`` tokens; if the server expires a token
(after ~5 minutes) it raises :class:`~kuar.client.errors.Gone` and the caller lists again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import TypeAdapter

from kuar.client.errors import error_from_status
from kuar.client.transport import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    Client,
    Params,
)
from kuar.resources.info import ResourceInfo
from kuar.resources.model import ListMeta, Resource, Status

if TYPE_CHECKING:  # generated; imported when used, so kuar generate models can run
    from kuar.models.autoscaling.v1 import Scale

T = TypeVar("T", bound=Resource)

PatchType = Literal["merge", "json", "strategic"]
FieldValidation = Literal["Strict", "Warn", "Ignore"]
Propagation = Literal["Foreground", "Background", "Orphan"]
WatchEventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]

_PATCH_TYPES: dict[str, str] = {
    "merge": MERGE_PATCH,
    "json": JSON_PATCH,
    "strategic": STRATEGIC_MERGE_PATCH,
}
_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _list_adapter(model: type[T]) -> TypeAdapter[list[T]]:
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    return adapter


@dataclass(frozen=True, slots=True)
class ObjectList(Generic[T]):
    """One page of a list: the items, the list's resourceVersion and the continue token."""

    items: list[T]
    metadata: ListMeta

    @property
    def resource_version(self) -> str:
        """The resourceVersion to start a watch from after this list."""
        return self.metadata.resource_version or ""

    @property
    def continue_token(self) -> str | None:
        """Pass to the next ``list(continue_=...)`` call; ``None`` on the last page."""
        return self.metadata.continue_ or None


@dataclass(frozen=True, slots=True)
class ApiWatchEvent(Generic[T]):
    """One event of :meth:`Api.watch` (``kube::api::WatchEvent`` in kube-rs).

    Not the runtime's :class:`kuar.runtime.WatchEvent`: this is one line of one watch
    request, without relisting or resuming.
    """

    type: WatchEventType
    object: T | None
    """The object as it is now (its last state for ``DELETED``); ``None`` for ``BOOKMARK``."""
    resource_version: str
    """Where to resume a watch after this event."""


class Api(Generic[T]):
    """The verbs of one kind, in one namespace or across all of them.

    ``Api(client, LoadTest, namespace="ns")`` works in ``ns`` (an object naming another
    namespace is refused by the server). Without ``namespace``, a namespaced kind is listed
    across all namespaces, and single-object verbs use the object's own
    ``metadata.namespace``, then the client's default namespace. A ``namespace=`` argument of
    a verb wins over both. ``resource`` overrides
    the class's :class:`ResourceInfo` (needed for :class:`~kuar.resources.DynamicObject`).
    """

    def __init__(
        self,
        client: Client,
        model: type[T],
        *,
        namespace: str | None = None,
        field_manager: str = "kuar",
        field_validation: FieldValidation | None = "Strict",
        resource: ResourceInfo | None = None,
    ) -> None:
        """Bind ``model`` to ``client``; nothing is sent until a verb is called."""
        self.client = client
        self.model = model
        self.info = resource or model.resource_info()
        self.namespace = namespace
        self.field_manager = field_manager
        self.field_validation = field_validation

    def __repr__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        return f"Api[{self.model.__name__}]({self.info.api_version}/{self.info.plural}{where})"

    # -- paths and coding -------------------------------------------------------------------

    def _ns(self, namespace: str | None, obj: Resource | None = None) -> str | None:
        if not self.info.namespaced:
            return None
        return (namespace or self.namespace
                or (obj.metadata.namespace if obj is not None else None)
                or self.client.namespace)

    def _path(self, name: str, namespace: str | None, obj: Resource | None = None,
              sub: str | None = None) -> str:
        if not name:
            raise ValueError(f"{self.info.kind}: metadata.name is required for this verb")
        path = self.info.path(self._ns(namespace, obj), name)
        return f"{path}/{sub}" if sub else path

    def decode(self, data: Mapping[str, Any]) -> T:
        """A typed object from decoded JSON (what the server sent)."""
        return self.model.model_validate(data)

    def _write_params(self, dry_run: bool, **extra: str | bool | int | None) -> Params:
        params: dict[str, str | bool | int | None] = {
            "fieldManager": self.field_manager,
            "fieldValidation": self.field_validation,
            **extra,
        }
        if dry_run:
            params["dryRun"] = "All"
        return params

    @staticmethod
    def _body(obj: Resource, *, apply: bool = False) -> str:
        # model_dump_json is ~4x faster than encode() + json.dumps (bench/typed); it writes
        # what Resource.encode() returns. The server refuses an applied configuration that
        # carries managedFields, so apply leaves them out.
        return obj.model_dump_json(
            by_alias=True, exclude_none=True, exclude_unset=apply,
            exclude={"metadata": {"managed_fields"}} if apply else None,
        )

    def _check(self, obj: Resource) -> None:
        if not isinstance(obj, self.model):
            raise TypeError(f"{self!r} takes {self.model.__name__}, not {type(obj).__name__}")

    # -- reading -----------------------------------------------------------------------------

    async def get(self, name: str, *, namespace: str | None = None) -> T:
        """The object ``name``; raises :class:`~kuar.client.errors.NotFound` if absent."""
        return self.decode(await self.client.request("GET", self._path(name, namespace)))

    def _collection(self, namespace: str | None) -> str:
        return self.info.path((namespace or self.namespace) if self.info.namespaced else None)

    async def list_raw(
        self,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
        timeout: float | None = 60.0,
    ) -> dict[str, Any]:
        """One page as the server sent it (decoded JSON, items not validated).

        For callers that transform objects before decoding them (the runtime's watcher);
        :meth:`list` is this page, typed.
        """
        body: dict[str, Any] = await self.client.request(
            "GET",
            self._collection(namespace),
            params={"labelSelector": label_selector, "fieldSelector": field_selector,
                    "limit": limit, "continue": continue_, "resourceVersion": resource_version},
            timeout=timeout,
        )
        return body

    async def list(
        self,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
        timeout: float | None = 60.0,
    ) -> ObjectList[T]:
        """One page of objects (all of them when ``limit`` is ``None``)."""
        body = await self.list_raw(
            namespace=namespace, label_selector=label_selector, field_selector=field_selector,
            limit=limit, continue_=continue_, resource_version=resource_version, timeout=timeout,
        )
        items = _list_adapter(self.model).validate_python(body.get("items") or [])
        return ObjectList(items=items, metadata=ListMeta.model_validate(body.get("metadata") or {}))

    async def list_all(
        self,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> AsyncIterator[T]:
        """Every object, fetched ``page_size`` at a time (memory bounded by one page)."""
        token: str | None = None
        while True:
            page = await self.list(
                namespace=namespace, label_selector=label_selector,
                field_selector=field_selector, limit=page_size, continue_=token,
            )
            for item in page.items:
                yield item
            token = page.continue_token
            if not token:
                return

    async def watch(
        self,
        *,
        resource_version: str | None = None,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        bookmarks: bool = False,
    ) -> AsyncIterator[ApiWatchEvent[T]]:
        """One watch request: events from ``resource_version`` until the server ends it.

        An ``ERROR`` event is raised as its error (410 Expired -> ``Gone``). Resuming,
        relisting and backoff are the caller's (the runtime's watcher does all three).
        """
        params: dict[str, str | int | bool | None] = {
            "watch": "1", "resourceVersion": resource_version,
            "labelSelector": label_selector, "fieldSelector": field_selector,
            "timeoutSeconds": timeout_seconds,
        }
        if bookmarks:
            params["allowWatchBookmarks"] = "true"
        async for line in self.client.stream(self._collection(namespace), params=params):
            kind, raw = line.get("type"), line.get("object") or {}
            if kind == "ERROR":
                raise error_from_status(int(raw.get("code") or 500), raw)
            rv = str((raw.get("metadata") or {}).get("resourceVersion") or "")
            if kind == "BOOKMARK":
                yield ApiWatchEvent("BOOKMARK", None, rv)
            elif kind in ("ADDED", "MODIFIED", "DELETED"):
                yield ApiWatchEvent(kind, self.decode(raw), rv)

    # -- writing -----------------------------------------------------------------------------

    async def create(self, obj: T, *, namespace: str | None = None, dry_run: bool = False) -> T:
        """Create ``obj``; raises :class:`~kuar.client.errors.AlreadyExists` if it exists."""
        self._check(obj)
        ns = self._ns(namespace, obj)
        body = await self.client.request(
            "POST", self.info.path(ns), params=self._write_params(dry_run), body=self._body(obj),
        )
        return self.decode(body)

    async def replace(
        self, obj: T, *, namespace: str | None = None, dry_run: bool = False,
        subresource: str | None = None,
    ) -> T:
        """Replace the whole object (PUT); a stale ``resourceVersion`` raises ``Conflict``.

        ``subresource`` writes through one (``"status"``, a CSR's ``"approval"``): the server
        takes only that part of ``obj``.
        """
        self._check(obj)
        body = await self.client.request(
            "PUT", self._path(obj.name, namespace, obj, sub=subresource),
            params=self._write_params(dry_run), body=self._body(obj),
        )
        return self.decode(body)

    async def patch(
        self,
        name: str,
        patch: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        type: PatchType = "merge",
        namespace: str | None = None,
        dry_run: bool = False,
        subresource: str | None = None,
    ) -> T:
        """Patch ``name`` with a merge, JSON or strategic merge patch.

        A JSON merge patch is a dict, a JSON patch a list of operations; strategic merge
        patches work on built-in kinds only.
        """
        body = await self.client.request(
            "PATCH", self._path(name, namespace, sub=subresource),
            params=self._write_params(dry_run), body=patch, content_type=_PATCH_TYPES[type],
        )
        return self.decode(body)

    async def apply(
        self,
        obj: T,
        *,
        field_manager: str | None = None,
        force: bool = False,
        namespace: str | None = None,
        dry_run: bool = False,
        subresource: str | None = None,
    ) -> T:
        """Server-side apply the fields set on ``obj`` as ``field_manager``.

        ``force`` takes ownership of fields another manager owns instead of raising
        :class:`~kuar.client.errors.Conflict`.
        """
        self._check(obj)
        params = dict(self._write_params(dry_run, force=force))
        params["fieldManager"] = field_manager or self.field_manager
        body = await self.client.request(
            "PATCH", self._path(obj.name, namespace, obj, sub=subresource), params=params,
            body=self._body(obj, apply=True), content_type=APPLY_PATCH,
        )
        return self.decode(body)

    async def delete(
        self,
        name: str,
        *,
        namespace: str | None = None,
        propagation_policy: Propagation | None = None,
        grace_period_seconds: int | None = None,
        resource_version: str | None = None,
        uid: str | None = None,
        dry_run: bool = False,
    ) -> T | Status:
        """Delete ``name``; returns the object while finalizers hold it, else a ``Status``.

        ``resource_version``/``uid`` are preconditions (``Conflict`` when they do not match).
        """
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        preconditions = {k: v for k, v in (("resourceVersion", resource_version), ("uid", uid))
                         if v is not None}
        if preconditions:
            options["preconditions"] = preconditions
        if dry_run:
            options["dryRun"] = ["All"]
        body = await self.client.request("DELETE", self._path(name, namespace), body=options)
        if isinstance(body, dict) and body.get("kind") == "Status":
            return Status.model_validate(body)
        return self.decode(body)

    # -- status subresource -----------------------------------------------------------------

    async def get_status(self, name: str, *, namespace: str | None = None) -> T:
        """The object read through its ``status`` subresource."""
        path = self._path(name, namespace, sub="status")
        return self.decode(await self.client.request("GET", path))

    async def replace_status(self, obj: T, *, namespace: str | None = None) -> T:
        """Write ``obj.status`` (PUT on ``/status``); spec changes in ``obj`` are ignored."""
        return await self.replace(obj, namespace=namespace, subresource="status")

    async def patch_status(
        self,
        name: str,
        patch: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        type: PatchType = "merge",
        namespace: str | None = None,
    ) -> T:
        """Patch the ``status`` subresource."""
        return await self.patch(name, patch, type=type, namespace=namespace, subresource="status")

    async def apply_status(
        self, obj: T, *, field_manager: str | None = None, force: bool = False,
        namespace: str | None = None,
    ) -> T:
        """Server-side apply the status fields set on ``obj``."""
        return await self.apply(obj, field_manager=field_manager, force=force,
                                namespace=namespace, subresource="status")

    # -- scale subresource ------------------------------------------------------------------

    async def get_scale(self, name: str, *, namespace: str | None = None) -> Scale:
        """The ``scale`` subresource (replicas and selector)."""
        from kuar.models.autoscaling.v1 import Scale

        path = self._path(name, namespace, sub="scale")
        return Scale.model_validate(await self.client.request("GET", path))

    async def replace_scale(
        self, name: str, scale: Scale, *, namespace: str | None = None
    ) -> Scale:
        """Set the replicas through the ``scale`` subresource."""
        from kuar.models.autoscaling.v1 import Scale

        body = await self.client.request(
            "PUT", self._path(name, namespace, sub="scale"), body=self._body(scale),
            params={"fieldManager": self.field_manager},
        )
        return Scale.model_validate(body)

    async def patch_scale(
        self, name: str, patch: Mapping[str, Any], *, namespace: str | None = None
    ) -> Scale:
        """Merge-patch the ``scale`` subresource (e.g. ``{"spec": {"replicas": 3}}``)."""
        from kuar.models.autoscaling.v1 import Scale

        body = await self.client.request(
            "PATCH", self._path(name, namespace, sub="scale"), body=patch,
            content_type=MERGE_PATCH, params={"fieldManager": self.field_manager},
        )
        return Scale.model_validate(body)
