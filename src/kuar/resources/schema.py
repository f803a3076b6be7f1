"""Structural OpenAPI v3 schemas (the ``openAPIV3Schema`` of a CRD version) from typed models.

Place in the pipeline: called by :mod:`kuar.resources.crd` for each version; fed by pydantic's
JSON Schema of the class (with the markers of :mod:`kuar.resources.markers`). Known as the
schema part of controller-gen in kubebuilder and ``schemars`` + ``StructuralSchemaRewriter``
in kube-rs.

Guarantees: the result is structural as apiextensions.k8s.io/v1 requires: every node has a
``type`` (or is int-or-string / preserve-unknown-fields), no ``$ref``, no ``anyOf`` of types,
``Optional[X]`` becomes ``X`` with ``nullable: true``, ``metadata`` at the root is a bare
object. Whatever cannot be expressed raises :class:`DeclarationError` naming the class and the
field (Python name and JSON name), never a schema the API server would reject.

Caveats: fields not declared by a model are pruned by the API server unless the model (or the
field) asks to preserve them; CEL rules are passed through unchecked (the API server compiles
them when the CRD is created; the integration tests create every generated CRD).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, PydanticUserError
from pydantic.errors import PydanticInvalidForJsonSchema

from kuar.resources.model import MODEL_MARK

# Formats the API server knows (k8s.io/kube-openapi/pkg/validation/strfmt), and pydantic's
# names for some of them.
K8S_FORMATS = frozenset({
    "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3",
    "uuid4", "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor",
    "byte", "password", "date", "duration", "datetime", "date-time",
})
_FORMAT_ALIASES = {"base64": "byte", "ipvanyaddress": None, "uri-reference": None}
_FORMAT_HINTS = {
    "binary": "use pydantic.Base64Bytes (sent as base64, format byte) instead of bytes",
    "duration": "timedelta is sent as ISO 8601, which the API server's duration format "
    "rejects; use a str with a pattern (e.g. '30s') or an int of seconds",
    "time": "a time of day has no Kubernetes format; use a str with a pattern",
}
_SCALARS = frozenset({"string", "integer", "number", "boolean"})
_TYPES = _SCALARS | {"object", "array"}
_DROPPED = ("title", "examples", "readOnly", "writeOnly", "deprecated", "discriminator",
            "$schema", "$id", "$comment", MODEL_MARK)


class DeclarationError(TypeError):
    """A typed resource declares something a CRD cannot express (names class and field)."""


class _Walker:
    def __init__(self, owner: str, defs: dict[str, Any]) -> None:
        self.owner = owner
        self.defs = defs

    def fail(self, where: str, message: str) -> DeclarationError:
        return DeclarationError(f"{self.owner}: {where}: {message}")

    def convert(self, node: Any, where: str, stack: tuple[str, ...]) -> dict[str, Any]:
        if node is True or node == {}:
            return {"x-kubernetes-preserve-unknown-fields": True}
        if not isinstance(node, dict):
            raise self.fail(where, f"unsupported schema {node!r}")
        node = dict(node)
        ref = node.pop("$ref", None)
        if ref is None and isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
            ref = node.pop("allOf")[0].get("$ref")
        if ref is not None:
            name = str(ref).rsplit("/", 1)[-1]
            if name in stack:
                raise self.fail(where, f"recursive type {name} cannot be expressed in a "
                                "structural schema; use dict[str, Any] with "
                                "PreserveUnknownFields() for the recursive part")
            target = dict(self.defs[name])
            # the field's own keys (description, default, markers) win over the class's
            return self.convert({**target, **node}, where, (*stack, name))
        for key in ("anyOf", "oneOf"):
            if key in node:
                return self._union(node, key, where, stack)
        if "allOf" in node:
            raise self.fail(where, "allOf (intersection types) is not supported")
        return self._plain(node, where, stack)

    def _union(
        self, node: dict[str, Any], key: str, where: str, stack: tuple[str, ...]
    ) -> dict[str, Any]:
        branches = node.pop(key)
        non_null = [b for b in branches if b != {"type": "null"}]
        nullable = len(non_null) < len(branches)
        if len(non_null) == 1:
            merged = self.convert({**non_null[0], **node}, where, stack)
        elif sorted(b.get("type", "") for b in non_null) == ["integer", "string"] and all(
            set(b) <= {"type"} for b in non_null
        ):
            node.pop("x-kubernetes-int-or-string", None)
            merged = self._plain({**node, "x-kubernetes-int-or-string": True}, where, stack)
        else:
            kinds = ", ".join(str(b.get("type") or b.get("$ref", "?").rsplit("/", 1)[-1])
                              for b in non_null)
            raise self.fail(where, f"a union of {kinds} cannot be expressed in a structural "
                            "schema (only X | None and int | str are supported)")
        if nullable:
            merged["nullable"] = True
            if merged.get("default", 0) is None:
                del merged["default"]
        return merged

    def _plain(self, node: dict[str, Any], where: str, stack: tuple[str, ...]) -> dict[str, Any]:
        mark = node.get(MODEL_MARK)
        for key in _DROPPED:
            node.pop(key, None)
        if "prefixItems" in node:
            raise self.fail(where, "tuples are not supported; use list[...] or a model")
        if "const" in node:
            node["enum"] = [node.pop("const")]
        for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if bound in node and not isinstance(node[bound], bool):
                node[plain] = node[bound]
                node[bound] = True
        if "format" in node:
            self._format(node, where)
        kind = node.get("type")
        if kind == "null":
            raise self.fail(where, "a field that is always None has no schema")
        if kind is None:
            if "enum" in node:
                raise self.fail(where, "an enum must have values of one type")
            if not (node.get("x-kubernetes-int-or-string")
                    or node.get("x-kubernetes-preserve-unknown-fields")):
                if set(node) <= {"description", "default", "x-kubernetes-validations",
                                 "nullable", "x-kubernetes-embedded-resource"}:
                    node["x-kubernetes-preserve-unknown-fields"] = True  # typing.Any
                else:
                    raise self.fail(where, f"cannot find a type in {sorted(node)}")
        elif kind not in _TYPES:
            raise self.fail(where, f"unsupported type {kind!r}")
        if node.get("default", 0) is None:
            del node["default"]
        if kind == "object":
            self._object(node, where, stack, mark)
        elif kind == "array":
            self._array(node, where, stack)
        if node.get("x-kubernetes-embedded-resource"):
            if kind not in (None, "object"):
                raise self.fail(where, "EmbeddedResource() needs an object (a model or a dict)")
            node["type"] = "object"
            if "properties" not in node:
                node["x-kubernetes-preserve-unknown-fields"] = True
        if node.get("x-kubernetes-int-or-string"):
            node.pop("type", None)
        return node

    def _format(self, node: dict[str, Any], where: str) -> None:
        fmt = node["format"]
        if fmt in _FORMAT_HINTS:
            raise self.fail(where, f"format {fmt!r} is not supported: {_FORMAT_HINTS[fmt]}")
        if fmt in _FORMAT_ALIASES:
            mapped = _FORMAT_ALIASES[fmt]
            if mapped is None:
                del node["format"]
            else:
                node["format"] = mapped
        elif fmt not in K8S_FORMATS:
            raise self.fail(where, f"format {fmt!r} is not one the API server knows "
                            f"({', '.join(sorted(K8S_FORMATS))})")

    def _object(
        self, node: dict[str, Any], where: str, stack: tuple[str, ...], mark: Any
    ) -> None:
        if node.pop("propertyNames", None) is not None:
            raise self.fail(where, "map keys must be plain str")
        if mark is not None or "properties" in node:
            cls_name = mark["name"] if mark else where
            names: dict[str, str] = mark["fields"] if mark else {}
            node.pop("additionalProperties", None)
            props = node.get("properties") or {}
            node["properties"] = {
                key: self.convert(
                    value,
                    f"{cls_name}.{names[key]} ({key})" if names.get(key, key) != key
                    else f"{cls_name}.{key}",
                    stack,
                )
                for key, value in props.items()
            }
            if not node["properties"]:
                del node["properties"]
                node.setdefault("x-kubernetes-preserve-unknown-fields", True)
            return
        extra = node.pop("additionalProperties", True)
        if extra is True or extra == {}:
            node["x-kubernetes-preserve-unknown-fields"] = True
        elif extra is False:
            pass
        else:
            node["additionalProperties"] = self.convert(extra, f"{where}[*]", stack)

    def _array(self, node: dict[str, Any], where: str, stack: tuple[str, ...]) -> None:
        items = self.convert(node.get("items", {}), f"{where}[]", stack)
        node["items"] = items
        if node.pop("uniqueItems", False):
            node.setdefault("x-kubernetes-list-type", "set")
        list_type = node.get("x-kubernetes-list-type")
        if list_type == "set" and items.get("type") not in _SCALARS and not items.get(
            "x-kubernetes-int-or-string"
        ):
            raise self.fail(where, "a set list (ListType.set() or set[...]) needs scalar items")
        if list_type == "map":
            keys = node.get("x-kubernetes-list-map-keys") or []
            if not keys:
                raise self.fail(where, "ListType.map() needs at least one key")
            if items.get("type") != "object" or "properties" not in items:
                raise self.fail(where, "a map list (ListType.map(...)) needs model items")
            if items.get("nullable"):
                raise self.fail(where, "a map list cannot have None items")
            required = set(items.get("required") or [])
            for key in keys:
                prop = items["properties"].get(key)
                if prop is None:
                    raise self.fail(where, f"map key {key!r} is not a field of the items "
                                    f"(fields: {', '.join(sorted(items['properties']))})")
                if key not in required and "default" not in prop:
                    raise self.fail(where, f"map key {key!r} must be required or have a default")
                # a key may be Optional in Python (None = unset) but never null in the API
                prop.pop("nullable", None)
                if prop.get("type") not in _SCALARS:
                    raise self.fail(where, f"map key {key!r} must be a scalar")


def structural_schema(model: type[BaseModel], *, root: bool = True) -> dict[str, Any]:
    """The structural ``openAPIV3Schema`` of ``model`` (see the module's guarantees).

    With ``root`` (a :class:`~kuar.resources.model.Resource`), ``apiVersion``, ``kind`` and
    ``metadata`` take the standard shape and are not required.
    """
    owner = model.__name__
    try:
        raw = model.model_json_schema(by_alias=True, mode="validation")
    except (PydanticInvalidForJsonSchema, PydanticUserError) as exc:
        raise DeclarationError(f"{owner}: {exc}") from exc
    defs = raw.pop("$defs", {})
    walker = _Walker(owner, defs)
    if root:
        props = raw.get("properties") or {}
        props.pop("metadata", None)
        raw["required"] = [
            r for r in raw.get("required", []) if r not in ("apiVersion", "kind", "metadata")
        ]
        if not raw["required"]:
            del raw["required"]
    schema = walker.convert(raw, owner, (owner,))
    if root:
        props = schema.setdefault("properties", {})
        props["apiVersion"] = {
            "type": "string",
            "description": "The versioned schema of this object (group/version).",
        }
        props["kind"] = {"type": "string", "description": "The REST kind of this object."}
        props["metadata"] = {"type": "object"}
        for key in ("nullable", "default"):
            schema.pop(key, None)
    return schema
