"""The public API of kuar and whether every public name has a docstring.

Place in the pipeline: documentation checks. The Sphinx build (``docs/_ext/kuar_sphinx.py``)
and ``tests/unit/test_docstrings.py`` (part of ``make test``) both use :func:`undocumented`;
the API reference pages document the same packages (:data:`PUBLIC_PACKAGES`).

A public name is one listed in ``__all__`` of a public package. Its docstring is the class's
or function's own ``__doc__`` (not inherited, not a dataclass's generated signature), or, for
constants and type aliases, the string literal right after the assignment in the module that
defines it (the attribute-docstring convention Sphinx and the editors read). Public methods and
properties defined by a public class are checked too.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

PUBLIC_PACKAGES = (
    "kuar.resources",
    "kuar.client",
    "kuar.runtime",
    "kuar.manager",
    "kuar.webhook",
    "kuar.testing",
    "kuar.base",
    "kuar.models",
)
"""The packages whose ``__all__`` is kuar's public API (the API reference documents them)."""


@dataclass(frozen=True)
class Missing:
    """A public name without a docstring."""

    package: str
    """The public package that exports it."""
    name: str
    """The name, ``Class.method`` for a member."""

    def __str__(self) -> str:
        """``package.name``."""
        return f"{self.package}.{self.name}"


@cache
def _attribute_docs(path: str) -> dict[str, str]:
    """Attribute docstrings of a module file: ``{"NAME": "doc"}`` and imports ``{"NAME": ...}``."""
    tree = ast.parse(Path(path).read_text(), filename=path)
    docs: dict[str, str] = {}
    body = tree.body
    for node, after in zip(body, [*body[1:], None], strict=True):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if (
            targets
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            for target in targets:
                if isinstance(target, ast.Name):
                    docs[target.id] = after.value.value
    return docs


@cache
def _imported_from(path: str) -> dict[str, tuple[str, str]]:
    """``{"local name": ("module", "name there")}`` of a module's absolute imports."""
    tree = ast.parse(Path(path).read_text(), filename=path)
    found: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                found[alias.asname or alias.name] = (node.module, alias.name)
    return found


def origin(package: str, name: str) -> str:
    """The module that defines ``package.name``, following ``from X import name`` chains."""
    module = importlib.import_module(package)
    for _ in range(8):
        path = getattr(module, "__file__", None)
        found = _imported_from(path).get(name) if path else None
        if found is None:
            break
        module, name = importlib.import_module(found[0]), found[1]
    return module.__name__


def home(name: str, package: str) -> str:
    """The public package that defines ``package.name`` (the API reference documents it there)."""
    defined_in = origin(package, name)
    homes = [p for p in PUBLIC_PACKAGES if defined_in == p or defined_in.startswith(p + ".")]
    return homes[0] if homes else package


def value_doc(package: str, name: str) -> str | None:
    """The attribute docstring of a constant or alias ``package.name`` (``None`` if missing)."""
    return _value_doc(importlib.import_module(package), name)


def _value_doc(module: ModuleType, name: str, depth: int = 0) -> str | None:
    """The attribute docstring of ``module.name``, following ``from X import name`` chains."""
    path = getattr(module, "__file__", None)
    if not path or depth > 8:
        return None
    doc = _attribute_docs(path).get(name)
    if doc:
        return doc
    origin = _imported_from(path).get(name)
    if origin is None:
        return None
    return _value_doc(importlib.import_module(origin[0]), origin[1], depth + 1)


def _own_doc(obj: Any) -> str | None:
    """The docstring written for ``obj`` itself (``None`` when only generated or inherited)."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return None
    if isinstance(obj, type) and dataclasses.is_dataclass(obj) and doc.startswith(
        f"{obj.__name__}("
    ):
        return None  # the signature dataclasses write when the class has no docstring
    return doc


def _members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties that ``cls`` itself defines (not pydantic's or object's)."""
    found = []
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    for name, member in cls.__dict__.items():
        if name.startswith("_") or name in fields:  # a field's default is not a member
            continue
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if isinstance(member, property) or inspect.isfunction(member):
            found.append((name, member))
    return found


def documented_names(package: str) -> list[tuple[str, Any]]:
    """``(name, object)`` for each name in ``package.__all__``."""
    module = importlib.import_module(package)
    return [(name, getattr(module, name)) for name in module.__all__]


def undocumented(packages: tuple[str, ...] = PUBLIC_PACKAGES) -> list[Missing]:
    """Every public name (and public member of a public class) without a docstring."""
    missing: list[Missing] = []
    for package in packages:
        module = importlib.import_module(package)
        for name, obj in documented_names(package):
            if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismethod(obj):
                if _own_doc(obj) is None:
                    missing.append(Missing(package, name))
                if inspect.isclass(obj) and obj.__module__.startswith(package.split(".")[0]):
                    missing += [
                        Missing(package, f"{name}.{member_name}")
                        for member_name, member in _members(obj)
                        if _own_doc(member) is None
                    ]
            elif _value_doc(module, name) is None:
                missing.append(Missing(package, name))
    return missing


if __name__ == "__main__":
    for item in undocumented():
        print(item)
