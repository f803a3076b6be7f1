"""The LoadTest manual's tables, read from the code when the docs are built.

Place in the pipeline: documentation. ``docs/_ext/kuar_sphinx.py`` renders these rows in
``docs/loadtest/manual.md``; nothing here is written by hand, so a field, condition or reason
added to ``kuar_loadtest`` appears in the manual at the next build.

- Fields: every property of ``spec`` and ``status`` of each served version, from the
  structural schema the CRD is generated from (:func:`kuar.resources.structural_schema`):
  JSON path, type, required, default, constraints and the field's docstring.
- Conditions and reasons: found in ``kuar_loadtest``'s source with :mod:`ast`. A condition is
  a 4-tuple ``(type, status, reason, message)`` with status ``True``/``False``/``Unknown``;
  a reason is a CamelCase string given to a ``...Error`` or ``...State`` constructor (the
  controller's :class:`~kuar_loadtest.desired.PlanError` and
  :class:`~kuar_loadtest.status.RunState`) or as a condition's reason. Module-level string
  constants are resolved, so reasons kept in constants are found too.
Caveat: a reason built at run time (a pod's own termination reason, a Job's condition reason)
is not a literal; the manual says so in prose.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kuar.resources import CustomResource, find_resources, structural_schema

CAMEL = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*$")
CARRIER = re.compile(r"^[A-Z]\w*(?:Error|State)$")
STATUSES = {"True", "False", "Unknown"}


@dataclass(frozen=True)
class FieldRow:
    """One property of a schema, flattened to its JSON path."""

    path: str
    """``spec.target.service``; ``[]`` marks the items of a list, ``{}`` a map's values."""
    type: str
    """OpenAPI type (``string``, ``integer``, ``array of string``...)."""
    required: bool
    """Whether the parent object requires it."""
    default: str
    """The default as JSON, or empty."""
    constraints: str
    """Bounds, pattern, enum, list type and CEL rules, in short form."""
    description: str
    """The field's docstring."""


def _type(node: dict[str, Any]) -> str:
    kind = str(node.get("type", "any"))
    if kind == "array":
        return f"array of {_type(node.get('items') or {})}"
    if kind == "object" and "additionalProperties" in node:
        return f"map of {_type(node['additionalProperties'] or {})}"
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    if node.get("format"):
        return f"{kind} ({node['format']})"
    return kind


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    if "enum" in node:
        parts.append("one of " + ", ".join(json.dumps(v) for v in node["enum"]))
    for key, text in (("minimum", ">= {}"), ("maximum", "<= {}"), ("minLength", "length >= {}"),
                      ("maxLength", "length <= {}"), ("minItems", "items >= {}"),
                      ("maxItems", "items <= {}"), ("minProperties", "keys >= {}"),
                      ("maxProperties", "keys <= {}"), ("pattern", "matches {}")):
        if key in node:
            parts.append(text.format(node[key]))
    if node.get("nullable"):
        parts.append("may be null")
    items = node.get("items") or {}
    for key, text in (("pattern", "each matches {}"), ("maxLength", "each length <= {}")):
        if key in items and items.get("type") != "object":
            parts.append(text.format(items[key]))
    if "x-kubernetes-list-type" in node:
        parts.append(f"list type {node['x-kubernetes-list-type']}")
    for rule in node.get("x-kubernetes-validations") or []:
        parts.append(f"rule: {rule.get('message') or rule['rule']}")
    return "; ".join(parts)


def _walk(node: dict[str, Any], path: str, required: bool) -> Iterator[FieldRow]:
    yield FieldRow(
        path=path, type=_type(node), required=required,
        default=json.dumps(node["default"]) if "default" in node else "",
        constraints=_constraints(node), description=" ".join(
            str(node.get("description") or "").split()),
    )
    children = node.get("properties") or {}
    needed = set(node.get("required") or [])
    for name, child in children.items():
        yield from _walk(child, f"{path}.{name}", name in needed)
    items = node.get("items")
    if isinstance(items, dict) and items.get("properties"):
        for name, child in items["properties"].items():
            yield from _walk(child, f"{path}[].{name}", name in set(items.get("required") or []))
    values = node.get("additionalProperties")
    if isinstance(values, dict) and values.get("properties"):
        for name, child in values["properties"].items():
            yield from _walk(child, f"{path}{{}}.{name}", name in set(values.get("required") or []))


def field_rows(resource: type[CustomResource], top: str) -> list[FieldRow]:
    """Every property under ``top`` (``spec`` or ``status``) of ``resource``'s schema."""
    schema = structural_schema(resource)
    node = (schema.get("properties") or {}).get(top)
    if node is None:
        return []
    return list(_walk(node, top, top in set(schema.get("required") or [])))


def resources(package: str) -> list[type[CustomResource]]:
    """The custom resources of ``package`` (one per kind and version), by kind, newest first."""
    found = find_resources(importlib.import_module(package))
    by_version = sorted(found, key=lambda r: r.resource_info().version, reverse=True)
    return sorted(by_version, key=lambda r: r.resource_info().kind)  # stable: kinds in turn


@dataclass(frozen=True)
class ReasonRow:
    """Where the code sets a reason, and the message it gives with it."""

    reason: str
    """The CamelCase reason, or ``<expression>`` when it comes from elsewhere."""
    condition: str
    """``Type=Status`` when set as a condition's reason, else empty."""
    phase: str
    """The phase given with it (``Failed``...), else empty."""
    where: str
    """``module.function`` that sets it."""
    message: str
    """The message (f-string parts shown as ``<expr>``)."""


def _text(node: ast.expr | None, constants: dict[str, str]) -> str:
    if node is None:
        return ""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.JoinedStr):
        return "".join(
            str(v.value) if isinstance(v, ast.Constant) else f"<{ast.unparse(v.value)}>"
            for v in node.values if isinstance(v, (ast.Constant, ast.FormattedValue))
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left, constants) + _text(node.right, constants)
    if isinstance(node, ast.Subscript):
        return _text(node.value, constants)
    return f"<{ast.unparse(node)}>"


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.AST]]:
    """``(qualified function name, node)`` for every node inside a function (or module)."""
    def visit(node: ast.AST, name: str) -> Iterator[tuple[str, ast.AST]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield from visit(child, f"{name}.{child.name}" if name else child.name)
            else:
                yield name, child
                yield from visit(child, name)
    return visit(tree, "")


def reason_rows(package: str, phases: set[str]) -> list[ReasonRow]:
    """Every condition and reason that ``package``'s modules set, in source order."""
    root = Path(importlib.import_module(package).__file__ or "").parent
    rows: list[ReasonRow] = []
    for path in sorted(root.rglob("*.py")):
        module = f"{package}.{'.'.join(path.relative_to(root).with_suffix('').parts)}"
        module = module.removesuffix(".__init__")
        tree = ast.parse(path.read_text(), filename=str(path))
        constants = {
            t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
            and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
            for t in n.targets if isinstance(t, ast.Name)
        }
        for function, node in _functions(tree):
            where = f"{module.removeprefix(package + '.')}.{function}".strip(".")
            if isinstance(node, ast.Tuple) and len(node.elts) == 4:
                ctype, status = (_text(e, constants) for e in node.elts[:2])
                if status.startswith("<"):
                    status = "True/False"  # computed, e.g. str(state.results_complete)
                if CAMEL.match(ctype) and status in {*STATUSES, "True/False"}:
                    choice = node.elts[2]
                    options = [choice.body, choice.orelse] if isinstance(choice, ast.IfExp) \
                        else [choice]
                    rows += [ReasonRow(_text(option, constants), f"{ctype}={status}", "", where,
                                       _text(node.elts[3], constants)) for option in options]
            elif isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else (
                    func.attr if isinstance(func, ast.Attribute) else "")
                if not CARRIER.match(name):
                    continue
                texts = [_text(a, constants) for a in node.args]
                phase = next((t for t in texts if t in phases), "")
                for i, text in enumerate(texts):
                    if CAMEL.match(text) and text not in phases:
                        message = texts[i + 1] if i + 1 < len(texts) else ""
                        rows.append(ReasonRow(text, "", phase, where, message))
                        break
    return rows
