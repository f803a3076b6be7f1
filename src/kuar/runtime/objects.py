"""Objects as the runtime hands them out: read-only views over decoded JSON, and their keys.

Place in the pipeline: the watcher turns each JSON object from the API server into a
:class:`ObjectView` (unless a ``decode`` hook makes a typed model instead); the store keeps
it; event handlers, predicates and reconcilers read it. Known as ``unstructured.Unstructured``
in client-go and ``DynamicObject`` in kube-rs (kuar's pydantic ``DynamicObject`` is the
untyped *model* in :mod:`kuar.resources`; this is the read-only *view*); :class:`ObjectKey`
is client-go's ``NamespacedName`` / kube-rs's ``ObjectRef``.

Guarantees:
- Views are read-only all the way down: :class:`FrozenDict` and :class:`FrozenList` wrap nested
  values on access, so the cached JSON is never copied to be handed out and never changed by a
  reader. :meth:`FrozenDict.thaw` returns a mutable deep copy for building updates.
- :func:`compact` rebuilds a decoded object with interned keys and short strings, which
  roughly halves the memory of a cached object (docs/decisions/0003-cache-format.md).
Caveats: a view keeps the whole object alive; ``isinstance(view, dict)`` is false, so pass
``view.thaw()`` to ``json.dumps`` or a request body.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, overload

_intern = sys.intern
INTERN_MAX_LEN = 32
"""Strings up to this length are interned by :func:`compact` (labels, phases, reasons, names);
longer ones (uids are 36, messages longer) are nearly always unique, so interning them only
costs time."""


class ObjectKey(NamedTuple):
    """Namespace and name of an object (namespace ``""`` for cluster-scoped objects).

    Also the reconcile request (:data:`kuar.runtime.reconcile.Request`).
    """

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @classmethod
    def parse(cls, text: str) -> ObjectKey:
        """``"ns/name"`` -> ``ObjectKey("ns", "name")``; ``"name"`` -> cluster-scoped."""
        namespace, _, name = text.rpartition("/")
        return cls(namespace, name)

    @classmethod
    def of(cls, metadata: Mapping[str, Any]) -> ObjectKey:
        """The key of an object from its ``metadata`` mapping."""
        return cls(metadata.get("namespace") or "", metadata["name"])


def _freeze(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return FrozenDict(value)
    if kind is list:
        return FrozenList(value)
    return value


def thaw(value: Any) -> Any:
    """A mutable deep copy of JSON data; views are unwrapped, other values are returned as is."""
    if isinstance(value, FrozenDict | FrozenList):
        value = value._data
    kind = type(value)
    if kind is dict:
        return {k: thaw(v) for k, v in value.items()}
    if kind is list:
        return [thaw(v) for v in value]
    return value


def compact(value: Any) -> Any:
    """Rebuild decoded JSON with interned keys and short strings (see the module docstring)."""
    kind = type(value)
    if kind is dict:
        return {_intern(k): compact(v) for k, v in value.items()}
    if kind is list:
        return [compact(v) for v in value]
    if kind is str and len(value) <= INTERN_MAX_LEN:
        return _intern(value)
    return value


class FrozenDict(Mapping[str, Any]):
    """A read-only view of a JSON object; nested objects and arrays come back as views too."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        """Wrap ``data`` without copying it; the caller must not change it afterwards."""
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return _freeze(self._data[key])

    def get(self, key: str, default: Any = None) -> Any:
        """Like :meth:`dict.get`, returning views for nested values."""
        value = self._data.get(key, default)
        return _freeze(value)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenDict):
            return self._data == other._data
        if isinstance(other, dict):
            return self._data == other
        if isinstance(other, Mapping):
            return bool(self._data == thaw(dict(other.items())))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"

    def thaw(self) -> dict[str, Any]:
        """A mutable deep copy (to build an update or a request body)."""
        result: dict[str, Any] = thaw(self._data)
        return result

    def path(self, *keys: str | int, default: Any = None) -> Any:
        """Follow ``keys`` through nested objects and arrays; ``default`` when a step is missing.

        ``obj.path("status", "conditions", 0, "type")``.
        """
        value: Any = self._data
        for key in keys:
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                return default
        return _freeze(value)


class FrozenList(Sequence[Any]):
    """A read-only view of a JSON array; nested values come back as views."""

    __slots__ = ("_data",)

    def __init__(self, data: list[Any]) -> None:
        """Wrap ``data`` without copying it."""
        self._data = data

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> FrozenList: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return FrozenList(self._data[index])
        return _freeze(self._data[index])

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Any]:
        return (_freeze(v) for v in self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenList):
            return self._data == other._data
        if isinstance(other, list | tuple):
            return self._data == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FrozenList({self._data!r})"

    def thaw(self) -> list[Any]:
        """A mutable deep copy."""
        result: list[Any] = thaw(self._data)
        return result


_EMPTY: dict[str, Any] = {}


class MetaView(FrozenDict):
    """A read-only view of ``metadata`` with typed accessors for the fields the runtime uses."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """``metadata.name`` (``""`` when absent, e.g. with ``generateName`` before create)."""
        return str(self._data.get("name") or "")

    @property
    def namespace(self) -> str:
        """``metadata.namespace``; ``""`` for cluster-scoped objects."""
        return str(self._data.get("namespace") or "")

    @property
    def key(self) -> ObjectKey:
        """The object's :class:`ObjectKey`."""
        return ObjectKey(self._data.get("namespace") or "", self._data.get("name") or "")

    @property
    def uid(self) -> str:
        """``metadata.uid``."""
        return str(self._data.get("uid") or "")

    @property
    def resource_version(self) -> str:
        """``metadata.resourceVersion``: opaque; only equality is meaningful."""
        return str(self._data.get("resourceVersion") or "")

    @property
    def generation(self) -> int | None:
        """``metadata.generation``: bumped by the server on spec changes (not on status)."""
        value = self._data.get("generation")
        return int(value) if value is not None else None

    @property
    def labels(self) -> FrozenDict:
        """``metadata.labels`` (empty when absent)."""
        return FrozenDict(self._data.get("labels") or _EMPTY)

    @property
    def annotations(self) -> FrozenDict:
        """``metadata.annotations`` (empty when absent)."""
        return FrozenDict(self._data.get("annotations") or _EMPTY)

    @property
    def finalizers(self) -> tuple[str, ...]:
        """``metadata.finalizers``."""
        return tuple(self._data.get("finalizers") or ())

    @property
    def owner_references(self) -> tuple[FrozenDict, ...]:
        """``metadata.ownerReferences`` as views."""
        return tuple(FrozenDict(r) for r in self._data.get("ownerReferences") or ())

    @property
    def deletion_timestamp(self) -> str | None:
        """``metadata.deletionTimestamp``: set once deletion was requested."""
        value = self._data.get("deletionTimestamp")
        return str(value) if value else None

    def controller_reference(self) -> FrozenDict | None:
        """The owner reference with ``controller: true``, if any."""
        for ref in self._data.get("ownerReferences") or ():
            if ref.get("controller"):
                return FrozenDict(ref)
        return None


class ObjectView(FrozenDict):
    """A read-only Kubernetes object of any kind, with accessors for common fields."""

    __slots__ = ()

    @property
    def api_version(self) -> str:
        """``apiVersion``."""
        return str(self._data.get("apiVersion") or "")

    @property
    def kind(self) -> str:
        """``kind``."""
        return str(self._data.get("kind") or "")

    @property
    def metadata(self) -> MetaView:
        """``metadata`` as a :class:`MetaView`."""
        return MetaView(self._data.get("metadata") or _EMPTY)

    @property
    def key(self) -> ObjectKey:
        """The object's :class:`ObjectKey`."""
        meta = self._data.get("metadata") or _EMPTY
        return ObjectKey(meta.get("namespace") or "", meta.get("name") or "")

    @property
    def name(self) -> str:
        """``metadata.name``."""
        return self.metadata.name

    @property
    def namespace(self) -> str:
        """``metadata.namespace`` (``""`` when cluster-scoped)."""
        return self.metadata.namespace

    @property
    def spec(self) -> FrozenDict:
        """``spec`` (empty when absent)."""
        return FrozenDict(self._data.get("spec") or _EMPTY)

    @property
    def status(self) -> FrozenDict:
        """``status`` (empty when absent)."""
        return FrozenDict(self._data.get("status") or _EMPTY)


def object_view(raw: dict[str, Any]) -> ObjectView:
    """The default ``decode`` hook: wrap the decoded JSON in a read-only :class:`ObjectView`."""
    return ObjectView(raw)


def strip_managed_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """The default ``transform`` hook: drop ``metadata.managedFields`` (in place, no copy).

    managedFields are 20-25 % of a cached object's bytes and no controller reads them.
    """
    meta = raw.get("metadata")
    if type(meta) is dict:
        meta.pop("managedFields", None)
    return raw
