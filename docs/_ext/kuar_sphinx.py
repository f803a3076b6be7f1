"""Sphinx extension of kuar's docs: generated LoadTest tables and the public-API docstring check.

Place in the pipeline: documentation build (``make docs``, ``docs/conf.py``). Directives:

- ``kuar-fields PACKAGE`` with ``:part: spec|status``: one table per version of the custom
  resources in ``PACKAGE`` (newest first) with every property (:mod:`loadtest_manual`);
- ``kuar-conditions PACKAGE`` and ``kuar-reasons PACKAGE``: the conditions and reasons the
  package's code sets, found in its source.

On ``builder-inited`` every public name without a docstring (:mod:`public_api`) is a warning,
so the build, run with ``-W``, fails on it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from typing import Any, ClassVar

import click
import loadtest_manual
import public_api
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from kuar.resources import crd_for

log = logging.getLogger(__name__)
PHASES = {"Pending", "Running", "Succeeded", "Failed"}
LITERAL = re.compile(r"``(.+?)``|`([^`]+)`|(<[^<>]+>)")


def _inline(text: str) -> nodes.paragraph:
    """A paragraph where ``code`` (and ``<expression>`` parts of messages) are literals."""
    para = nodes.paragraph()
    pos = 0
    for match in LITERAL.finditer(text):
        if match.start() > pos:
            para += nodes.Text(text[pos:match.start()])
        literal = next(g for g in match.groups() if g is not None)
        para += nodes.literal(literal, literal)
        pos = match.end()
    if pos < len(text):
        para += nodes.Text(text[pos:])
    return para


def _table(header: list[str], rows: list[list[str]], code_columns: set[int],
           widths: list[int]) -> nodes.table:
    table = nodes.table(classes=["kuar-generated"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    row = nodes.row()
    for title in header:
        row += nodes.entry("", nodes.paragraph(text=title))
    head += row
    body = nodes.tbody()
    group += body
    for values in rows:
        row = nodes.row()
        for i, value in enumerate(values):
            if i in code_columns and value:
                cell = nodes.paragraph()
                cell += nodes.literal(value, value)
            else:
                cell = _inline(value)
            row += nodes.entry("", cell)
        body += row
    return table


def _short(where: str) -> str:
    """``module.Class.function`` -> ``module.function`` (the table stays narrow)."""
    parts = where.split(".")
    return ".".join([parts[0], parts[-1]]) if len(parts) > 2 else where


class FieldsDirective(SphinxDirective):
    """``kuar-fields PACKAGE`` ``:part: spec|status``: the field tables of every version."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"part": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        """One rubric and table per version."""
        part = self.options.get("part", "spec")
        out: list[nodes.Node] = []
        for resource in loadtest_manual.resources(self.arguments[0]):
            info = resource.resource_info()
            rows = [
                [r.path, f"{r.type}, required" if r.required else r.type, r.default,
                 r.constraints, r.description]
                for r in loadtest_manual.field_rows(resource, part)
            ]
            out.append(nodes.rubric(text=f"{info.api_version} {info.kind} {part}"))
            out.append(_table(["Field", "Type", "Default", "Constraints", "Description"],
                              rows, {0, 2}, [24, 10, 8, 22, 36]))
        return out


class VersionsDirective(SphinxDirective):
    """``kuar-versions PACKAGE``: each version's served/storage flags and printer columns."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        """One table: each kind, newest version first."""
        rows = []
        found = loadtest_manual.resources(self.arguments[0])
        kinds: dict[str, list[type[Any]]] = {}
        for resource in found:  # one CRD per kind (LoadTest, LoadTestRun...)
            kinds.setdefault(resource.resource_info().kind, []).append(resource)
        versions = {(kind, v["name"]): v for kind, group in kinds.items()
                    for v in crd_for(*group)["spec"]["versions"]}
        for resource in found:
            info = resource.resource_info()
            version = versions[(info.kind, info.version)]
            columns = ", ".join(c["name"] for c in version.get("additionalPrinterColumns", []))
            rows.append([info.kind, info.api_version, "yes" if version["served"] else "no",
                         "yes" if version["storage"] else "no", columns,
                         f"{resource.__module__}.{resource.__qualname__}"])
        return [_table(["Kind", "apiVersion", "Served", "Storage", "kubectl get columns",
                        "Python class"], rows, {1, 5}, [12, 16, 7, 7, 32, 26])]


class ClickDirective(SphinxDirective):
    """``kuar-click MODULE:GROUP SUBCOMMAND...``: the options of a command, from click."""

    required_arguments = 1
    optional_arguments = 4

    def run(self) -> list[nodes.Node]:
        """One table: flags, default, help."""
        module, _, attr = self.arguments[0].partition(":")
        command = getattr(importlib.import_module(module), attr)
        for name in self.arguments[1:]:
            command = command.commands[name]
        rows = []
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            flags = ", ".join([*param.opts, *param.secondary_opts])
            default = "" if param.default in (None, False, ()) or callable(param.default) \
                else str(param.default)
            choices = param.type.choices if isinstance(param.type, click.Choice) else ()
            help_text = " ".join((param.help or "").split())
            if choices:
                help_text += f" One of: {', '.join(map(str, choices))}."
            rows.append([flags, param.metavar or param.type.name.upper(), default, help_text])
        return [_table(["Flag", "Value", "Default", "Meaning"], rows, {0, 2},
                       [24, 14, 14, 48])]


class ConditionsDirective(SphinxDirective):
    """``kuar-conditions PACKAGE``: every condition type, status and reason the code sets."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        """One table, in source order."""
        rows = [
            [*r.condition.split("=", 1), r.reason, _short(r.where), r.message]
            for r in loadtest_manual.reason_rows(self.arguments[0], PHASES) if r.condition
        ]
        return [_table(["Condition", "Status", "Reason", "Set in", "Message"], rows,
                       {0, 1, 2, 3}, [14, 8, 18, 16, 44])]


class ReasonsDirective(SphinxDirective):
    """``kuar-reasons PACKAGE``: every reason given to a phase or a planning error."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        """One table, in source order."""
        rows = [
            [r.reason, r.phase, _short(r.where), r.message]
            for r in loadtest_manual.reason_rows(self.arguments[0], PHASES) if not r.condition
        ]
        return [_table(["Reason", "Phase", "Set in", "Message"], rows, {0, 1, 2},
                       [18, 10, 18, 54])]


@functools.cache
def _public_names() -> dict[str, str]:
    """``{"kuar.client.api.Api": "kuar.client.Api", ...}``: where each public object lives."""
    names: dict[str, str] = {}
    for package in public_api.PUBLIC_PACKAGES:
        for name, obj in public_api.documented_names(package):
            at_home = public_api.home(name, package)
            public = f"{at_home}.{name}"
            names[f"{package}.{name}"] = public
            names.setdefault(f"{public_api.origin(package, name)}.{name}", public)
            qualname = getattr(obj, "__qualname__", None)
            module = getattr(obj, "__module__", None)
            if at_home == package and isinstance(qualname, str) and isinstance(module, str):
                names.setdefault(f"{module}.{qualname}", public)
    return names


def skip_reexports(app: Sphinx, what: str, name: str, obj: Any, skip: bool,
                   options: Any) -> bool | None:
    """Document a re-exported name once, in the package that defines it."""
    if what != "module":
        return None
    package = app.env.temp_data.get("autodoc:module") or app.env.ref_context.get("py:module")
    if package in public_api.PUBLIC_PACKAGES and public_api.home(name, package) != package:
        return True
    return None


def complete_package(app: Sphinx, what: str, name: str, obj: Any, options: Any,
                     lines: list[str]) -> None:
    """Add to a package's docstring its constants and aliases, and what it re-exports."""
    if what != "module" or name not in public_api.PUBLIC_PACKAGES:
        return
    exported = public_api.documented_names(name)
    data = [(n, o) for n, o in exported
            if public_api.home(n, name) == name and public_api.value_doc(name, n) is not None
            and not (inspect.isclass(o) or inspect.isfunction(o))]
    if data:
        lines += ["", ".. rubric:: Constants and type aliases", ""]
        for n, _ in data:
            lines += [f".. py:data:: {n}", ""]
            lines += [f"   {line}" for line in inspect.cleandoc(
                public_api.value_doc(name, n) or "").splitlines()]
            lines.append("")
    others = [n for n, _ in exported if public_api.home(n, name) != name]
    if others:
        names = _public_names()
        refs = ", ".join(f":py:obj:`{n} <{names[f'{name}.{n}']}>`" for n in others)
        lines += ["", f"Also exported here, documented where they are defined: {refs}.", ""]


def resolve_internal(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve ``kuar.x.module.Name`` (how annotations spell it) to the public name."""
    if node.get("refdomain") != "py":
        return None
    target = str(node.get("reftarget", ""))
    if not target.startswith("kuar."):
        return None
    names = _public_names()
    domain = env.get_domain("py")
    candidates = []
    if target in names:
        candidates.append(names[target])
    parts = target.split(".")
    for cut in range(len(parts) - 1, 1, -1):  # Class.method: map the class, keep the rest
        head, rest = ".".join(parts[:cut]), parts[cut:]
        if head in names:
            candidates.append(".".join([names[head], *rest]))
            break
    if node.get("reftype") == "mod":
        candidates += [p for p in public_api.PUBLIC_PACKAGES if target.startswith(p + ".")]
    for candidate in candidates:
        if candidate == target:
            continue
        new = node.deepcopy()
        new["reftarget"] = candidate
        for reftype in (node.get("reftype"), "obj"):
            new["reftype"] = reftype
            found = domain.resolve_xref(env, node.get("refdoc", ""), app.builder, reftype,
                                        candidate, new, contnode)
            if found is not None:
                return found
    return None


def check_docstrings(app: Sphinx) -> None:
    """Warn (an error under ``-W``) for every public name without a docstring."""
    for missing in public_api.undocumented():
        log.warning("public name without a docstring: %s", missing, type="kuar",
                    subtype="undocumented")


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directives and the docstring check."""
    app.add_directive("kuar-fields", FieldsDirective)
    app.add_directive("kuar-conditions", ConditionsDirective)
    app.add_directive("kuar-versions", VersionsDirective)
    app.add_directive("kuar-click", ClickDirective)
    app.add_directive("kuar-reasons", ReasonsDirective)
    app.connect("builder-inited", check_docstrings)
    app.connect("autodoc-skip-member", skip_reexports)
    app.connect("autodoc-process-docstring", complete_package)
    app.connect("missing-reference", resolve_internal)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
