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
- :func:`pack` (the cache's stored form, docs/decisions/0022-memory-footprint.md) rebuilds a
  decoded object with interned keys and short strings, and every JSON object whose set of
  keys was seen before as a :class:`Record`: a tuple of its values behind one shared
  key -> position table per key set, the way CPython shares the keys of instance
  ``__dict__``s (PEP 412). A 5-key object then costs a 6-slot tuple instead of a dict.
  :func:`compact` is the older, dict-only form (interning only).
- Views read plain dicts and records alike; nothing is copied to hand an object out.
Caveats: a view keeps the whole object alive; ``isinstance(view, dict)`` is false, so pass
``view.thaw()`` to ``json.dumps`` or a request body. A view's ``_data`` may be a
:class:`Record`, which is a read-only mapping but a ``tuple`` underneath: never serialise it
directly (``thaw`` first).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, KeysView, Mapping, Sequence
from typing import Any, NamedTuple, cast, overload

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
    if kind is dict or kind is Record:
        return FrozenDict(value)
    if kind is list:
        return FrozenList(value)
    return value


def thaw(value: Any) -> Any:
    """A mutable deep copy of JSON data; views are unwrapped, other values are returned as is."""
    if isinstance(value, FrozenDict | FrozenList):
        value = value._data
    kind = type(value)
    if kind is dict or kind is Record:
        return {k: thaw(v) for k, v in value.items()}
    if kind is list:
        return [thaw(v) for v in value]
    return value


class Record(tuple[Any, ...]):
    """A compact JSON object: its values in a tuple, its keys in a table shared per key set.

    Made by :func:`pack`, never by hand, and read through a :class:`FrozenDict` view. Item
    0 is the key -> position table shared by every record with the same keys in the same
    order; items 1.. are the values. Memory: 8 bytes per value plus the tuple's 48, against
    a dict's 184 bytes for up to 5 keys, 272 for up to 10, 464 for up to 21 (CPython 3.11).
    Besides the views, it offers ``get``, ``in``, ``keys``/``values``/``items`` and ``==``
    with any mapping, like a dict. Caveat: indexing, ``len``, iteration and truth are the
    tuple's (an integer index, item 0 the key table): they stay C-fast for the views, which
    is why a record is not registered as a :class:`~collections.abc.Mapping`. ``json.dumps``
    of a record is wrong; :func:`thaw` gives a plain dict. Copies and pickles are plain dicts.
    """

    __slots__ = ()

    def get(self, key: str, default: Any = None) -> Any:
        """Like :meth:`dict.get`."""
        index = self[0].get(key)
        return default if index is None else self[index]

    def __contains__(self, key: object) -> bool:
        return key in self[0]

    def keys(self) -> KeysView[str]:
        """The keys, in order."""
        keys: KeysView[str] = self[0].keys()
        return keys

    def values(self) -> tuple[Any, ...]:
        """The values, in key order."""
        return self[1:]

    def items(self) -> Iterator[tuple[str, Any]]:
        """``(key, value)`` pairs, in order."""
        return zip(self[0], self[1:], strict=True)

    def __eq__(self, other: object) -> bool:
        if type(other) is Record:
            if other[0] is self[0]:
                return tuple.__eq__(self, other)
            other = dict(other.items())
        elif not isinstance(other, Mapping):
            return NotImplemented
        if len(other) != len(self) - 1:
            return False
        missing = object()
        return all(other.get(k, missing) == v for k, v in self.items())

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Record({dict(self.items())!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (list(self.items()),))


MAX_SHAPES = 4096
"""At most this many key sets get a shared table (a :class:`Record` shape); objects with
other key sets stay interned dicts. Kubernetes objects repeat a few hundred key sets (their
schemas); the bound keeps free-form maps (ConfigMap data, unusual labels) from growing the
table without limit."""

_SHAPES: dict[tuple[str, ...], dict[str, int]] = {}
"""Key set -> its shared key -> position table."""
_SEEN_ONCE: dict[tuple[str, ...], None] = {}
"""Key sets seen once: a key set becomes a shape when it is seen again, so maps whose keys
are unique to one object (ConfigMap data) are not charged a table of their own."""

# Values that are unique to one object: interning them only fills the interpreter's table.
_UNIQUE_META = frozenset({"name", "generateName", "uid", "resourceVersion"})


def _shape(keys: tuple[str, ...]) -> dict[str, int] | None:
    shape = _SHAPES.get(keys)
    if shape is not None:
        return shape
    if keys not in _SEEN_ONCE:
        if len(_SEEN_ONCE) >= MAX_SHAPES:
            _SEEN_ONCE.clear()
        _SEEN_ONCE[keys] = None
        return None
    if len(_SHAPES) >= MAX_SHAPES:
        return None
    del _SEEN_ONCE[keys]
    shape = _SHAPES[keys] = {k: i for i, k in enumerate(keys, 1)}
    return shape


def _pack_value(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return _pack_dict(value, None)
    if kind is list:
        return [_pack_value(v) for v in value]
    if kind is str and len(value) <= INTERN_MAX_LEN:
        return _intern(value)
    return value


def _pack_dict(value: dict[str, Any], keep: frozenset[str] | None) -> Any:
    keys = tuple(map(_intern, value))
    if keep is None:
        values = [_pack_value(v) for v in value.values()]
    else:
        values = [
            v if k in keep else _pack_value(v)
            for k, v in zip(keys, value.values(), strict=True)
        ]
    return _record_or_dict(keys, values)


def _record_or_dict(keys: tuple[str, ...], values: list[Any]) -> Any:
    """A :class:`Record` when ``keys`` is a known shape (:func:`_shape`), else a dict."""
    shape = _shape(keys)
    if shape is None:
        return dict(zip(keys, values, strict=True))
    return Record((shape, *values))


def pack_metadata(metadata: Any) -> Any:
    """:func:`pack` for a ``metadata`` object alone (what the cache keeps beside a typed object)."""
    if type(metadata) is not dict:
        return _pack_value(metadata)
    return _pack_dict(metadata, _UNIQUE_META)


def pack(value: Any) -> Any:
    """The cache's stored form of decoded JSON: interned, with :class:`Record` objects.

    Keys and strings of up to :data:`INTERN_MAX_LEN` characters are interned, except the
    values of ``metadata.name``/``generateName``/``uid``/``resourceVersion`` (unique per
    object); every JSON object whose key set is a known shape becomes a :class:`Record`, the
    others stay dicts. Arrays stay lists. The result reads the same through
    :class:`FrozenDict`; :func:`thaw` turns it back into plain dicts and lists.
    """
    if type(value) is not dict:
        return _pack_value(value)
    meta = value.get("metadata")
    if type(meta) is not dict:
        return _pack_dict(value, None)
    keys = tuple(map(_intern, value))
    values = [
        _pack_dict(v, _UNIQUE_META) if v is meta else _pack_value(v) for v in value.values()
    ]
    return _record_or_dict(keys, values)


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

    def __init__(self, data: dict[str, Any] | Record) -> None:
        """Wrap ``data`` (a dict or a :class:`Record`) without copying it.

        The caller must not change ``data`` afterwards.
        """
        self._data = data

    def __getitem__(self, key: str) -> Any:
        data = self._data
        if type(data) is Record:
            index = data[0].get(key)
            if index is None:
                raise KeyError(key)
            value = data[index]
        else:
            value = cast(dict[str, Any], data)[key]
        kind = type(value)
        if kind is dict or kind is Record:
            return FrozenDict(value)
        return FrozenList(value) if kind is list else value

    def get(self, key: str, default: Any = None) -> Any:
        """Like :meth:`dict.get`, returning views for nested values."""
        data = self._data
        if type(data) is Record:  # Record.get, inlined: the hot read path
            index = data[0].get(key)
            value = default if index is None else data[index]
        else:
            value = data.get(key, default)
        kind = type(value)
        if kind is dict or kind is Record:
            return FrozenDict(value)
        return FrozenList(value) if kind is list else value

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        data = self._data
        return iter(data[0] if type(data) is Record else data)

    def __len__(self) -> int:
        data = self._data
        return len(data) - 1 if type(data) is Record else len(data)

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
        missing = object()
        for key in keys:
            if type(value) is Record:
                value = value.get(key, missing) if type(key) is str else missing
                if value is missing:
                    return default
                continue
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


def _field(data: Any, key: str) -> Any:
    """``data.get(key)`` for a dict or a record, in one Python call (the accessors' path)."""
    if type(data) is Record:
        index = data[0].get(key)
        return None if index is None else data[index]
    return data.get(key)


def _mapping(value: Any) -> Any:
    """``value`` if it is a JSON object, else an empty one.

    Checked by type, not by truth: a record is a non-empty tuple even when it has no keys.
    """
    kind = type(value)
    return value if kind is dict or kind is Record else _EMPTY


class MetaView(FrozenDict):
    """A read-only view of ``metadata`` with typed accessors for the fields the runtime uses."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """``metadata.name`` (``""`` when absent, e.g. with ``generateName`` before create)."""
        return str(_field(self._data, "name") or "")

    @property
    def namespace(self) -> str:
        """``metadata.namespace``; ``""`` for cluster-scoped objects."""
        return str(_field(self._data, "namespace") or "")

    @property
    def key(self) -> ObjectKey:
        """The object's :class:`ObjectKey`."""
        data = self._data
        return ObjectKey(_field(data, "namespace") or "", _field(data, "name") or "")

    @property
    def uid(self) -> str:
        """``metadata.uid``."""
        return str(_field(self._data, "uid") or "")

    @property
    def resource_version(self) -> str:
        """``metadata.resourceVersion``: opaque; only equality is meaningful."""
        return str(_field(self._data, "resourceVersion") or "")

    @property
    def generation(self) -> int | None:
        """``metadata.generation``: bumped by the server on spec changes (not on status)."""
        value = _field(self._data, "generation")
        return int(value) if value is not None else None

    @property
    def labels(self) -> FrozenDict:
        """``metadata.labels`` (empty when absent)."""
        return FrozenDict(_mapping(_field(self._data, "labels")))

    @property
    def annotations(self) -> FrozenDict:
        """``metadata.annotations`` (empty when absent)."""
        return FrozenDict(_mapping(_field(self._data, "annotations")))

    @property
    def finalizers(self) -> tuple[str, ...]:
        """``metadata.finalizers``."""
        return tuple(_field(self._data, "finalizers") or ())

    @property
    def owner_references(self) -> tuple[FrozenDict, ...]:
        """``metadata.ownerReferences`` as views."""
        return tuple(FrozenDict(r) for r in _field(self._data, "ownerReferences") or ())

    @property
    def deletion_timestamp(self) -> str | None:
        """``metadata.deletionTimestamp``: set once deletion was requested."""
        value = _field(self._data, "deletionTimestamp")
        return str(value) if value else None

    def controller_reference(self) -> FrozenDict | None:
        """The owner reference with ``controller: true``, if any."""
        for ref in _field(self._data, "ownerReferences") or ():
            if ref.get("controller"):
                return FrozenDict(ref)
        return None


class ObjectView(FrozenDict):
    """A read-only Kubernetes object of any kind, with accessors for common fields."""

    __slots__ = ()

    @property
    def api_version(self) -> str:
        """``apiVersion``."""
        return str(_field(self._data, "apiVersion") or "")

    @property
    def kind(self) -> str:
        """``kind``."""
        return str(_field(self._data, "kind") or "")

    @property
    def metadata(self) -> MetaView:
        """``metadata`` as a :class:`MetaView`."""
        return MetaView(_mapping(_field(self._data, "metadata")))

    @property
    def key(self) -> ObjectKey:
        """The object's :class:`ObjectKey`."""
        meta = _mapping(_field(self._data, "metadata"))
        return ObjectKey(_field(meta, "namespace") or "", _field(meta, "name") or "")

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
        return FrozenDict(_mapping(_field(self._data, "spec")))

    @property
    def status(self) -> FrozenDict:
        """``status`` (empty when absent)."""
        return FrozenDict(_mapping(_field(self._data, "status")))


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
