"""Python source for typed models of built-in kinds, from the API server's OpenAPI v3 documents.

Place in the pipeline: ``kuar generate models`` fetches ``/openapi/v3/...`` and discovery from
an API server (the local control plane by default) and calls :func:`render_models`; its output
is the committed package :mod:`kuar.models` (``kuar.models.core.v1.Pod``,
``kuar.models.apps.v1.Deployment``). Pure: documents in, file texts out. Known as the
generator of ``k8s-openapi`` in kube-rs and of ``lightkube-models``.

Guarantees:
- one module per Go package of the API (``io.k8s.api.apps.v1`` -> ``kuar/models/apps/v1.py``),
  so importing one group imports only the groups its types refer to;
- Python attribute names are snake_case, each field has its JSON name as an explicit alias,
  the OpenAPI descriptions become class docstrings and field descriptions;
- kinds with exactly one group/version/kind that discovery lists become
  :class:`~kuar.resources.Resource` classes with discovery's plural and scope; other kinds
  with one group/version/kind (subresource bodies such as ``Scale``) too, with a guessed plural;
- int-or-string, quantities, times, preserve-unknown-fields, embedded resources, list types
  and map types are kept as the markers of :mod:`kuar.resources.markers`, so a CRD field typed
  with a generated model gets the same schema the API server publishes;
- the output is deterministic: same documents, same bytes.

Caveats: enums stay ``str`` (a newer server may add values); scalar defaults go into the JSON
schema only (a CRD that embeds the model gets them), not into the Python defaults (a decoded
object keeps what the server sent, and ``None`` means absent); ``x-kubernetes-map-type``
on a whole type and patch strategies are not kept.

Errors: a schema in a Go package with no module mapping raises :class:`ModelGenError`.
"""

from __future__ import annotations

import keyword
import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kuar.resources.info import ResourceInfo
from kuar.resources.model import KubeModel, Resource

_PREFIXES = (
    ("io.k8s.api.", ""),
    ("io.k8s.apimachinery.pkg.apis.", ""),
    ("io.k8s.apiextensions-apiserver.pkg.apis.", ""),
    ("io.k8s.kube-aggregator.pkg.apis.", ""),
)

# Schemas that map to a type of kuar.resources instead of a generated class.
_SPECIAL: dict[str, str] = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": "ObjectMeta",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference": "OwnerReference",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta": "ListMeta",
}
# Schemas whose value is free-form JSON.
_FREEFORM = {
    "io.k8s.apimachinery.pkg.runtime.RawExtension": "dict[str, Any]",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": "dict[str, Any]",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch": "Any",
}
_SKIP = ("io.k8s.apimachinery.pkg.version.",)
_ROOT_FIELDS = ("apiVersion", "kind", "metadata")
_WORD = re.compile(
    r"[A-Z]{2,}s(?=[A-Z0-9]|$)|[A-Z]+[0-9]*(?=[A-Z][a-z]|$)|[A-Z]?[a-z]+[0-9]*|[0-9]+|[A-Z]+[0-9]*"
)


class ModelGenError(ValueError):
    """The documents contain something the generator has no mapping for (names it)."""


def snake_case(name: str) -> str:
    """``podIP`` -> ``pod_ip``, ``clusterIPs`` -> ``cluster_ips``, ``$ref`` -> ``ref``."""
    cleaned = name.replace("$", "").replace("-", "_")
    parts: list[str] = []
    for chunk in cleaned.split("_"):
        words = _WORD.findall(chunk) or [chunk]
        parts.extend(w.lower() for w in words)
    return "_".join(p for p in parts if p)


def _module_of(schema_name: str) -> tuple[str, str]:
    """``io.k8s.api.apps.v1.Deployment`` -> (``apps.v1``, ``Deployment``)."""
    package, _, cls = schema_name.rpartition(".")
    for prefix, replacement in _PREFIXES:
        if package.startswith(prefix):
            return replacement + package[len(prefix):], cls
    raise ModelGenError(f"{schema_name}: no module mapping for Go package {package!r}")


@dataclass
class _Module:
    path: str  # "apps.v1"
    classes: dict[str, str] = field(default_factory=dict)  # class name -> source
    imports: set[str] = field(default_factory=set)  # other module paths
    names: set[str] = field(default_factory=set)  # kuar.resources names used
    typing: set[str] = field(default_factory=set)

    @property
    def alias(self) -> str:
        return self.path.replace(".", "_")


def _reserved(base: type[KubeModel]) -> set[str]:
    # names the annotations use: a field called ``bool`` would shadow the type in the class body
    used = {"bool", "int", "str", "list", "dict", "float", "Any", "Annotated", "Field"}
    return {n for n in dir(base) if not n.startswith("__")} | set(keyword.kwlist) | used | {
        "model_config", "model_fields"}


_RESERVED_MODEL = _reserved(KubeModel)
_RESERVED_KIND = _reserved(Resource)


def _doc(text: str, indent: str) -> str:
    text = " ".join(text.split()) if "\n\n" not in text else text
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()] or [""]
    lines: list[str] = []
    for i, para in enumerate(paragraphs):
        if i:
            lines.append("")
        lines.extend(textwrap.wrap(" ".join(para.split()), 96 - len(indent)) or [""])
    if lines[-1].endswith('"'):
        lines[-1] += " "
    if len(lines) == 1:
        return f'{indent}"""{lines[0]}"""\n'
    body = "\n".join((indent + line) if line else "" for line in lines)
    return f'{indent}"""{body.lstrip()}\n{indent}"""\n'


def _string_literal(text: str, indent: str) -> str:
    """A description as implicitly joined literals wrapped near 100 columns."""
    flat = " ".join(text.split())
    pieces = textwrap.wrap(flat, 88 - len(indent), drop_whitespace=False,
                           break_on_hyphens=False) or [""]
    if len(pieces) == 1:
        return repr(pieces[0])
    inner = "\n".join(f"{indent}    {p!r}" for p in pieces)
    return f"(\n{inner}\n{indent})"


class _Generator:
    def __init__(self, schemas: Mapping[str, Any], resources: Iterable[ResourceInfo],
                 source: str) -> None:
        self.schemas = schemas
        self.source = source
        self.served = {(r.group, r.version, r.kind): r for r in resources}
        self.modules: dict[str, _Module] = {}
        self.kinds: dict[tuple[str, str, str], str] = {}
        self.map_keys = {
            (items_ref, key)
            for schema in schemas.values()
            for prop in (schema.get("properties") or {}).values()
            if prop.get("x-kubernetes-list-type") == "map"
            and (items_ref := _ref_name(prop.get("items") or {}))
            for key in prop.get("x-kubernetes-list-map-keys") or []
        }

    def module(self, path: str) -> _Module:
        if path not in self.modules:
            self.modules[path] = _Module(path)
        return self.modules[path]

    def ref(self, name: str, here: _Module) -> str:
        if name in _SPECIAL:
            here.names.add(_SPECIAL[name])
            return _SPECIAL[name]
        if name in _FREEFORM:
            here.typing.add("Any")
            return _FREEFORM[name]
        schema = self.schemas.get(name)
        if schema is None:
            raise ModelGenError(f"reference to unknown schema {name}")
        if not self._is_class(schema):
            return self.annotation(schema, here)
        path, cls = _module_of(name)
        if path == here.path:
            return cls
        here.imports.add(path)
        return f"{self.module(path).alias}.{cls}"

    @staticmethod
    def _is_class(schema: Mapping[str, Any]) -> bool:
        return schema.get("type") == "object" and bool(schema.get("properties"))

    def annotation(self, prop: Mapping[str, Any], here: _Module) -> str:
        ref = _ref_name(prop)
        if ref is not None:
            base = self.ref(ref, here)
        elif prop.get("x-kubernetes-int-or-string"):
            here.names.add("IntOrString")
            base = "IntOrString"
        elif prop.get("x-kubernetes-embedded-resource"):
            here.typing.update({"Annotated", "Any"})
            here.names.add("EmbeddedResource")
            base = "Annotated[dict[str, Any], EmbeddedResource()]"
        else:
            kind = prop.get("type")
            if kind == "string":
                base = "str"
            elif kind == "integer":
                base = "int"
            elif kind == "number":
                here.names.add("Number")
                base = "Number"
            elif kind == "boolean":
                base = "bool"
            elif kind == "array":
                base = f"list[{self.annotation(prop.get('items') or {}, here)}]"
                base = self._list_marker(prop, base, here)
            elif kind == "object" and isinstance(prop.get("additionalProperties"), dict):
                value = self.annotation(prop["additionalProperties"], here)
                base = f"dict[str, {value}]"
            elif kind == "object":
                here.typing.add("Any")
                base = "dict[str, Any]"
            else:
                here.typing.add("Any")
                base = "Any"
        if prop.get("x-kubernetes-map-type") and ref is None and base.startswith("dict["):
            here.typing.add("Annotated")
            here.names.add("MapType")
            base = f'Annotated[{base}, MapType("{prop["x-kubernetes-map-type"]}")]'
        if prop.get("nullable") and base != "Any":
            base = f"{base} | None"
        return base

    @staticmethod
    def _list_marker(prop: Mapping[str, Any], base: str, here: _Module) -> str:
        list_type = prop.get("x-kubernetes-list-type")
        if list_type not in ("map", "set", "atomic"):
            return base
        here.typing.add("Annotated")
        here.names.add("ListType")
        if list_type == "map":
            keys = ", ".join(f'"{k}"' for k in prop.get("x-kubernetes-list-map-keys") or [])
            return f"Annotated[{base}, ListType.map({keys})]"
        return f"Annotated[{base}, ListType.{list_type}()]"

    def kind_of(self, schema: Mapping[str, Any]) -> tuple[str, ResourceInfo | None] | None:
        """The base class keywords of a top-level kind, or None for a plain model."""
        gvks = schema.get("x-kubernetes-group-version-kind") or []
        if len(gvks) != 1:
            return None
        gvk = gvks[0]
        props = schema.get("properties") or {}
        if str(gvk["kind"]).endswith("List") and "items" in props:
            return None
        if not all(name in props for name in ("apiVersion", "kind")):
            return None
        served = self.served.get((gvk.get("group", ""), gvk["version"], gvk["kind"]))
        group = gvk.get("group", "")
        words = [f'group="{group}", ' if group else "", f'version="{gvk["version"]}", ',
                 f'kind="{gvk["kind"]}"']
        if served is not None:
            words.append(f', plural="{served.plural}"')
            if not served.namespaced:
                words.append(", namespaced=False")
        return "".join(words), served

    def render_class(self, name: str, schema: Mapping[str, Any]) -> None:
        path, cls = _module_of(name)
        here = self.module(path)
        kind = self.kind_of(schema)
        props: Mapping[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        head = f"class {cls}(Kind, {kind[0]}):\n" if kind else f"class {cls}(Model):\n"
        if len(head) > 101:
            head = f"class {cls}(\n    Kind, {kind[0] if kind else ''}\n):\n"
        out = [head]
        if kind is not None:
            gvk = schema["x-kubernetes-group-version-kind"][0]
            self.kinds[(gvk.get("group", ""), gvk["version"], gvk["kind"])] = path
        description = schema.get("description") or f"{cls} ({path})."
        if kind is not None and kind[1] is None:
            description += ("\n\nNot a resource of its own: the body of a subresource or a "
                            "request (its plural is a guess).")
        out.append(_doc(description, "    ") + "\n")
        reserved = _RESERVED_KIND if kind else _RESERVED_MODEL
        taken: set[str] = set()
        body: list[str] = []
        for json_name in sorted(props):
            if kind and json_name in _ROOT_FIELDS:
                continue
            prop = props[json_name]
            attr = snake_case(json_name) or "field"
            while attr in reserved or attr in taken or attr[0].isdigit():
                attr += "_"
            taken.add(attr)
            annotation = self.annotation(prop, here)
            if annotation in ("Time", "MicroTime"):
                # Go writes a zero time as null, even where the field is required
                annotation += " | None"
            args = [] if json_name in required else ["default=None"]
            if json_name not in required and annotation != "Any" and not annotation.endswith(
                "| None"
            ):
                annotation += " | None"
            args.append(f'alias="{json_name}"')
            default = prop.get("default")
            if isinstance(default, str | int | float | bool) and (
                default or (name, json_name) in self.map_keys
            ):
                # For CRD schemas (a map-list key needs one). Empty defaults elsewhere would
                # make a CRD store "" and 0 everywhere. Decoding keeps what was sent.
                args.append(f"json_schema_extra={{'default': {default!r}}}")
            text = prop.get("description")
            if text:
                args.append("description=" + _string_literal(text, "        "))
            line = f"    {attr}: {annotation} = Field({', '.join(args)})\n"
            if len(line) > 100:
                joined = ",\n        ".join(args)
                line = f"    {attr}: {annotation} = Field(\n        {joined},\n    )\n"
            body.append(line)
        here.names.add("Field")
        out.extend(body)
        here.classes[cls] = "".join(out)

    def render(self) -> dict[str, str]:
        for name in sorted(self.schemas):
            if name in _SPECIAL or name in _FREEFORM or name.startswith(_SKIP):
                continue
            if self._is_class(self.schemas[name]):
                self.render_class(name, self.schemas[name])
        files: dict[str, str] = {}
        for path, module in sorted(self.modules.items()):
            if not module.classes:
                continue
            files[path.replace(".", "/") + ".py"] = self._file(module)
        packages = sorted({p.split(".")[0] for p, m in self.modules.items() if m.classes})
        for package in packages:
            versions = sorted(p.split(".")[1] for p, m in self.modules.items()
                              if m.classes and p.startswith(package + "."))
            files[f"{package}/__init__.py"] = (
                f'"""Kubernetes {package} types: versions {", ".join(versions)} '
                f'(generated by ``kuar generate models``; do not edit)."""\n'
            )
        lines = "".join(f"    ({g!r}, {v!r}, {k!r}): {p!r},\n".replace("'", '"')
                        for (g, v, k), p in sorted(self.kinds.items()))
        files["_kinds.py"] = (
            f'"""Which module of kuar.models holds each kind, generated from {self.source}.\n\n'
            "Generated by ``kuar generate models``; do not edit.\n\"\"\"\n\n"
            "KINDS: dict[tuple[str, str, str], str] = {\n" + lines + "}\n"
            '"""(group, version, kind) -> module under kuar.models (``apps.v1``)."""\n'
        )
        return files

    def _file(self, module: _Module) -> str:
        group, version = module.path.split(".")
        head = [
            f'"""Kubernetes {group}/{version} types, generated from {self.source}.\n\n'
            "Generated by ``kuar generate models``; do not edit (``kuar generate models "
            "--check`` fails on a\nhand edit). Field names are snake_case; each field's "
            "JSON name is its alias.\n\"\"\"\n\n",
            "from __future__ import annotations\n\n",
        ]
        if module.typing:
            head.append(f"from typing import {', '.join(sorted(module.typing))}\n\n")
        head.append("from pydantic import Field\n\n")
        for path in sorted(module.imports):
            head.append(f"import kuar.models.{path} as {self.module(path).alias}\n")
        head.append("from kuar.models._base import Kind, Model\n")
        names = sorted(module.names - {"Field"})
        if names:
            head.append(f"from kuar.resources import {', '.join(names)}\n")
        head.append("\n__all__ = [\n")
        head.extend(f'    "{cls}",\n' for cls in sorted(module.classes))
        head.append("]\n")
        body = "".join(f"\n\n{module.classes[cls]}" for cls in sorted(module.classes))
        return "".join(head) + body


def _ref_name(prop: Mapping[str, Any]) -> str | None:
    """The schema a property refers to (``$ref``, or OpenAPI v3's one-item ``allOf``)."""
    ref = prop.get("$ref")
    all_of = prop.get("allOf")
    if ref is None and isinstance(all_of, list) and len(all_of) == 1:
        ref = all_of[0].get("$ref")
    return None if ref is None else str(ref).rsplit("/", 1)[-1]


def merge_schemas(documents: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """All ``components.schemas`` of the documents, by name (the same name is the same type)."""
    merged: dict[str, Any] = {}
    for doc in documents:
        for name, schema in ((doc.get("components") or {}).get("schemas") or {}).items():
            merged.setdefault(name, schema)
    return merged


def render_models(
    documents: Iterable[Mapping[str, Any]], resources: Iterable[ResourceInfo], *, source: str
) -> dict[str, str]:
    """File path (relative to the ``kuar.models`` package) -> Python source text.

    ``documents`` are OpenAPI v3 documents (``/openapi/v3/api/v1``,
    ``/openapi/v3/apis/apps/v1``, ...); ``resources`` come from discovery; ``source`` names
    the server in each module's docstring (for example ``kube-apiserver v1.36.3``).
    """
    return _Generator(merge_schemas(documents), resources, source).render()
