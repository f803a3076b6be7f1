"""CustomResourceDefinitions (apiextensions.k8s.io/v1) from :class:`CustomResource` classes.

Place in the pipeline: called by ``kuar generate crds`` (files in ``deploy/crds/``), by tests
and by operators that install their own CRDs; fed by the class keywords of each
:class:`~kuar.resources.model.CustomResource` and :mod:`kuar.resources.schema`. Known as
controller-gen's ``crd`` generator in kubebuilder and ``CustomResourceExt::crd()`` in kube-rs.

Guarantees:
- one CRD per (group, plural); each class is one version of it; versions are ordered by
  Kubernetes version priority (v2, v1, v1beta1, ...), so output is deterministic, and
  :func:`dump_crd` writes keys in sorted order.
- every declaration mistake (bad or upper-case names, missing group, several storage
  versions, a printer column or scale path that points nowhere, an unsupported field type)
  raises :class:`DeclarationError` naming the class (and field) before any YAML is produced.
Caveats: CEL rules are compiled only by the API server; conversion between versions is
``None`` (apiVersion rewrite) unless ``conversion`` is given.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

import yaml

from kuar.resources.model import CrdOptions, CustomResource
from kuar.resources.schema import DeclarationError, structural_schema

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_COLUMN_TYPES = ("integer", "number", "string", "boolean", "date")


def _options(cls: type[CustomResource]) -> CrdOptions:
    opts = cls.__kuar_crd__
    if opts is None:
        raise DeclarationError(
            f"{cls.__name__}: declares no kind; use class keywords, e.g. "
            f"class {cls.__name__}(CustomResource, group=..., version=..., kind=...)"
        )
    return opts


def _check_names(cls: type[CustomResource], o: CrdOptions) -> None:
    name = cls.__name__
    if not o.group:
        raise DeclarationError(f"{name}: missing group (class keyword group='example.com')")
    if len(o.group) > 253 or not _DNS_SUBDOMAIN.match(o.group):
        raise DeclarationError(
            f"{name}: group {o.group!r} must be a lower-case DNS name with at least one dot"
        )
    if not _DNS_LABEL.match(o.version) or len(o.version) > 63:
        raise DeclarationError(
            f"{name}: version {o.version!r} must be a lower-case DNS label such as 'v1'"
        )
    if not _KIND.match(o.kind):
        raise DeclarationError(f"{name}: kind {o.kind!r} must be CamelCase (e.g. 'LoadTest')")
    if o.list_kind is not None and not _KIND.match(o.list_kind):
        raise DeclarationError(f"{name}: list_kind {o.list_kind!r} must be CamelCase")
    for label, value in (("plural", o.plural), ("singular", o.singular)):
        if not _DNS_LABEL.match(value) or len(value) > 63:
            hint = " (upper-case letters are not allowed)" if value.lower() != value else ""
            raise DeclarationError(
                f"{name}: {label} {value!r} must be a lower-case DNS label{hint}"
            )
    if len(f"{o.plural}.{o.group}") > 253:
        raise DeclarationError(f"{name}: {o.plural}.{o.group} is longer than 253 characters")
    for label, values in (("short_names", o.short_names), ("categories", o.categories)):
        for value in values:
            if not _DNS_LABEL.match(value):
                raise DeclarationError(
                    f"{name}: {label} entry {value!r} must be a lower-case DNS label"
                )
        if len(set(values)) != len(values):
            raise DeclarationError(f"{name}: {label} has duplicates: {list(values)}")
    if o.scope not in ("Namespaced", "Cluster"):
        raise DeclarationError(f"{name}: scope {o.scope!r} must be 'Namespaced' or 'Cluster'")
    if o.deprecation_warning is not None and not o.deprecated:
        raise DeclarationError(f"{name}: deprecation_warning needs deprecated=True")


def _lookup(schema: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The schema node at a simple JSONPath like ``.spec.replicas`` (``None`` if absent)."""
    node: dict[str, Any] | None = schema
    for part in path.lstrip(".").split("."):
        if node is None:
            return None
        props = node.get("properties") or {}
        node = props.get(part)
    return node


def _check_paths(cls: type[CustomResource], o: CrdOptions, schema: dict[str, Any]) -> None:
    name = cls.__name__
    seen: set[str] = set()
    for col in o.printer_columns:
        where = f"{name}: printer column {col.name!r}"
        if not col.name or col.name in seen:
            raise DeclarationError(f"{where}: names must be non-empty and unique")
        seen.add(col.name)
        if col.type not in _COLUMN_TYPES:
            raise DeclarationError(f"{where}: type must be one of {', '.join(_COLUMN_TYPES)}")
        if col.priority < 0:
            raise DeclarationError(f"{where}: priority must be >= 0")
        if not col.json_path.startswith("."):
            raise DeclarationError(f"{where}: json_path must start with '.'")
        simple = re.fullmatch(r"(\.[A-Za-z0-9_-]+)+", col.json_path)
        if simple and not col.json_path.startswith(".metadata.") and _lookup(
            schema, col.json_path
        ) is None:
            raise DeclarationError(f"{where}: json_path {col.json_path} names no field")
    has_status = "status" in (schema.get("properties") or {})
    if o.status_subresource and not has_status:
        raise DeclarationError(f"{name}: status_subresource=True needs a 'status' field")
    if o.scale is not None:
        checks = [("spec_replicas_path", o.scale.spec_replicas_path, ".spec.", "integer"),
                  ("status_replicas_path", o.scale.status_replicas_path, ".status.", "integer")]
        if o.scale.label_selector_path is not None:
            path = o.scale.label_selector_path
            prefix = ".status." if path.startswith(".status.") else ".spec."
            checks.append(("label_selector_path", path, prefix, "string"))
        for label, path, prefix, kind in checks:
            node = _lookup(schema, path) if path.startswith(prefix) else None
            if node is None or node.get("type") != kind:
                raise DeclarationError(
                    f"{name}: scale {label} {path!r} must name a {kind} field under {prefix}"
                )


def _version(cls: type[CustomResource]) -> dict[str, Any]:
    o = _options(cls)
    _check_names(cls, o)
    schema = structural_schema(cls, root=True)
    _check_paths(cls, o, schema)
    version: dict[str, Any] = {
        "name": o.version,
        "served": o.served,
        "storage": o.storage,
        "schema": {"openAPIV3Schema": schema},
    }
    if o.deprecated:
        version["deprecated"] = True
        if o.deprecation_warning:
            version["deprecationWarning"] = o.deprecation_warning
    subresources: dict[str, Any] = {}
    status = o.status_subresource
    if status is None:
        status = "status" in (schema.get("properties") or {})
    if status:
        subresources["status"] = {}
    if o.scale is not None:
        scale = {"specReplicasPath": o.scale.spec_replicas_path,
                 "statusReplicasPath": o.scale.status_replicas_path}
        if o.scale.label_selector_path:
            scale["labelSelectorPath"] = o.scale.label_selector_path
        subresources["scale"] = scale
    if subresources:
        version["subresources"] = subresources
    if o.printer_columns:
        columns = []
        for col in o.printer_columns:
            entry: dict[str, Any] = {"name": col.name, "type": col.type,
                                     "jsonPath": col.json_path}
            if col.description:
                entry["description"] = col.description
            if col.format:
                entry["format"] = col.format
            if col.priority:
                entry["priority"] = col.priority
            columns.append(entry)
        version["additionalPrinterColumns"] = columns
    return version


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version order as a sort key: v2 < v1 < v1beta2 < v1beta1 < v1alpha1 < foo."""
    m = _KUBE_VERSION.match(version)
    if not m:
        return (3, 0, 0, version)
    major, stage, minor = int(m[1]), m[2], int(m[3] or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, version)


def crd_for(
    *classes: type[CustomResource], conversion: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One CRD whose versions are ``classes`` (one class per version).

    Raises :class:`DeclarationError` on any mistake, e.g. classes that disagree on names or
    scope, two classes for one version, or not exactly one storage version.
    """
    if not classes:
        raise DeclarationError("crd_for() needs at least one CustomResource class")
    first = _options(classes[0])
    seen: dict[str, str] = {}
    versions = []
    for cls in sorted(classes, key=lambda c: version_priority(_options(c).version)):
        o = _options(cls)
        same = ("group", "kind", "plural", "singular", "short_names", "categories", "scope",
                "list_kind")
        for attr in same:
            if getattr(o, attr) != getattr(first, attr):
                raise DeclarationError(
                    f"{cls.__name__}: {attr} {getattr(o, attr)!r} differs from "
                    f"{classes[0].__name__}'s {getattr(first, attr)!r}; every version of a "
                    "CRD shares names and scope"
                )
        if o.version in seen:
            raise DeclarationError(
                f"{cls.__name__}: version {o.version!r} is also declared by {seen[o.version]}"
            )
        seen[o.version] = cls.__name__
        versions.append(_version(cls))
    storage = [v["name"] for v in versions if v["storage"]]
    if len(storage) != 1:
        members = ", ".join(c.__name__ for c in classes)
        raise DeclarationError(
            f"{members}: exactly one version must have storage=True, found {len(storage)} "
            f"({', '.join(storage) or 'none'})"
        )
    if not any(v["served"] for v in versions):
        raise DeclarationError(f"{classes[0].__name__}: no version is served")
    names: dict[str, Any] = {"kind": first.kind, "listKind": first.list_kind or f"{first.kind}List",
                             "plural": first.plural, "singular": first.singular}
    if first.short_names:
        names["shortNames"] = list(first.short_names)
    if first.categories:
        names["categories"] = list(first.categories)
    spec: dict[str, Any] = {"group": first.group, "names": names, "scope": first.scope,
                            "versions": versions}
    if conversion is not None:
        spec["conversion"] = conversion
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{first.plural}.{first.group}"},
        "spec": spec,
    }


def find_resources(module: ModuleType | str) -> list[type[CustomResource]]:
    """Every :class:`CustomResource` with a kind defined in ``module`` or its submodules."""
    mod = importlib.import_module(module) if isinstance(module, str) else module
    modules = [mod]
    if hasattr(mod, "__path__"):
        for info in sorted(pkgutil.walk_packages(mod.__path__, mod.__name__ + "."),
                           key=lambda i: i.name):
            modules.append(importlib.import_module(info.name))
    names = {m.__name__ for m in modules}
    found: dict[str, type[CustomResource]] = {}
    for m in modules:
        for value in vars(m).values():
            if (isinstance(value, type) and issubclass(value, CustomResource)
                    and value.__module__ in names and value.__kuar_crd__ is not None):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[k] for k in sorted(found)]


def crds_for(
    classes: Iterable[type[CustomResource]], *, conversion: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One CRD per (group, plural) among ``classes``, sorted by CRD name.

    ``conversion`` (a ``spec.conversion`` stanza) goes to every CRD with several versions.
    """
    groups: dict[tuple[str, str], list[type[CustomResource]]] = {}
    for cls in classes:
        o = _options(cls)
        groups.setdefault((o.group, o.plural), []).append(cls)
    crds = [crd_for(*members, conversion=conversion if len(members) > 1 else None)
            for members in groups.values()]
    return sorted(crds, key=lambda c: str(c["metadata"]["name"]))


def dump_crd(crd: dict[str, Any], *, header: Sequence[str] = ()) -> str:
    """YAML text of a CRD with sorted keys (stable diffs), after ``# header`` lines."""
    lines = "".join(f"# {line}\n" for line in header)
    body = yaml.safe_dump(crd, sort_keys=True, default_flow_style=False, allow_unicode=True,
                          width=100)
    return lines + body


GENERATED_MARK = "Generated by `kuar generate crds"


def render_crds(module: str, *, conversion: dict[str, Any] | None = None) -> dict[str, str]:
    """File name -> YAML text of every CRD declared in ``module`` (``<group>_<plural>.yaml``)."""
    out: dict[str, str] = {}
    for crd in crds_for(find_resources(module), conversion=conversion):
        spec = crd["spec"]
        name = f"{spec['group']}_{spec['names']['plural']}.yaml"
        out[name] = dump_crd(crd, header=[f"{GENERATED_MARK} {module}`; do not edit."])
    return out
