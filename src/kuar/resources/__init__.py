"""Typed Kubernetes resources and CRD generation; pure (no I/O, no HTTP).

Place in the pipeline: the bottom layer. ``kuar.client`` encodes and decodes these types,
``kuar.runtime`` keys caches by :meth:`Resource.resource_info`, ``kuar generate crds`` writes
the CRDs of :class:`CustomResource` subclasses.

- :mod:`kuar.resources.model`: :class:`KubeModel`, :class:`Resource`, :class:`CustomResource`,
  :class:`ObjectMeta`, :class:`DynamicObject`
- :mod:`kuar.resources.markers`: CEL rules, list/map types, int-or-string, embedded resources
- :mod:`kuar.resources.schema`: structural OpenAPI v3 schemas
- :mod:`kuar.resources.crd`: CustomResourceDefinitions
- :mod:`kuar.resources.modelgen`: Python source of typed built-in kinds from OpenAPI v3
  (the generated package is :mod:`kuar.models`)
"""

from typing import TYPE_CHECKING, Any

from kuar.resources.info import ResourceInfo
from kuar.resources.markers import (
    EmbeddedResource,
    Format,
    IntOrString,
    ListType,
    MapType,
    MicroTime,
    Number,
    PreserveUnknownFields,
    Quantity,
    Rule,
    Time,
)
from kuar.resources.model import (
    Condition,
    Conditions,
    CustomResource,
    DynamicObject,
    KubeModel,
    ListMeta,
    ObjectMeta,
    OwnerReference,
    PrinterColumn,
    Resource,
    ScaleSubresource,
    Status,
)

if TYPE_CHECKING:
    from kuar.resources.crd import crd_for, crds_for, dump_crd, find_resources, render_crds
    from kuar.resources.schema import DeclarationError, structural_schema

_LAZY = {
    # CRD and schema generation: build-time work (``kuar generate crds``, tests, installers)
    # that a running controller never does; imported on first use (docs/decisions/0022).
    "crd_for": "kuar.resources.crd",
    "crds_for": "kuar.resources.crd",
    "dump_crd": "kuar.resources.crd",
    "find_resources": "kuar.resources.crd",
    "render_crds": "kuar.resources.crd",
    "DeclarationError": "kuar.resources.schema",
    "structural_schema": "kuar.resources.schema",
}


def __getattr__(name: str) -> Any:
    """Import the CRD and schema generators on first use (see ``_LAZY``)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain module attributes
    return value


def __dir__() -> list[str]:
    """The module's names, the lazily imported ones included (for ``dir()`` and doc tools)."""
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Condition",
    "Conditions",
    "CustomResource",
    "DeclarationError",
    "DynamicObject",
    "EmbeddedResource",
    "Format",
    "IntOrString",
    "KubeModel",
    "ListMeta",
    "ListType",
    "MapType",
    "MicroTime",
    "Number",
    "ObjectMeta",
    "OwnerReference",
    "PreserveUnknownFields",
    "PrinterColumn",
    "Quantity",
    "Resource",
    "ResourceInfo",
    "Rule",
    "ScaleSubresource",
    "Status",
    "Time",
    "crd_for",
    "crds_for",
    "dump_crd",
    "find_resources",
    "render_crds",
    "structural_schema",
]
