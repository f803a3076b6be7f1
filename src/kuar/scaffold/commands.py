"""``kuar init``, ``kuar create api`` and ``kuar create webhook`` as library calls.

Place in the pipeline: called by :mod:`kuar.cli.scaffold`. Each command checks its input
(:mod:`.names`), reads ``PROJECT``, renders its files (:mod:`.render`), checks every file
(:func:`.project.plan_writes`), and only then writes. Afterwards it runs ``kuar generate``
(CRDs, RBAC, webhook configurations) in the project, as ``make generate`` does.

Errors: :class:`ScaffoldError` for bad input or files that would be overwritten; nothing has
been written then. A failing ``kuar generate`` afterwards is reported with its output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kuar.scaffold import render
from kuar.scaffold.names import (
    ScaffoldError,
    check_domain,
    check_kind,
    check_project,
    check_version,
    full_group,
    module_name,
)
from kuar.scaffold.project import PROJECT_FILE, File, Project, Resource, plan_writes, write_files


@dataclass(frozen=True)
class Outcome:
    """What a command wrote, and what it ran afterwards."""

    written: list[str]
    generated: list[str]


def kuar_checkout() -> Path:
    """The kuar source tree this code runs from (the generated project depends on it)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists() and (parent / "loadgen").is_dir():
            return parent
    raise ScaffoldError(
        "kuar is not installed from a source checkout (no pyproject.toml with loadgen/ above "
        f"{here}); the generated project needs one until kuar is on a package index")


def _commit(folder: Path, p: Project, files: list[File], *, force: bool,
            generate: bool) -> Outcome:
    writes = plan_writes(folder, [*files, *render.generated_files(p)], force=force)
    written = write_files(folder, writes)
    return Outcome(written=written, generated=run_generators(folder, p) if generate else [])


def init_project(folder: Path, *, domain: str, project: str | None = None,
                 force: bool = False, generate: bool = True) -> Outcome:
    """``kuar init``: a new project in ``folder`` (empty, unless ``force``)."""
    check_domain(domain)
    name = check_project(project or folder.resolve().name)
    if folder.exists() and not folder.is_dir():
        raise ScaffoldError(f"{folder} is a file")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise ScaffoldError(f"{folder} is not empty; kuar init needs an empty folder "
                            "(--force writes into it, overwriting the files it scaffolds)")
    p = Project(domain=domain, project=name, package=module_name(name),
                kuar=str(kuar_checkout()))
    folder.mkdir(parents=True, exist_ok=True)
    return _commit(folder, p, render.init_files(p), force=force, generate=generate)


def create_api(folder: Path, *, group: str, version: str, kind: str, namespaced: bool = True,
               controller: bool = True, force: bool = False,
               generate: bool = True) -> Outcome:
    """``kuar create api``: a new kind, or a new version of an existing kind."""
    p = Project.load(folder)
    full_group(group, p.domain)
    check_version(version)
    check_kind(kind)
    existing = p.find(group, kind)
    if existing is None:
        r = Resource(group=group, kind=kind, versions=[version], namespaced=namespaced,
                     controller=controller)
        p.resources.append(r)
        files = render.kind_files(p, r)
    elif version in existing.versions and not force:
        raise ScaffoldError(
            f"kind {kind} already exists in {group}.{p.domain}/{version} (PROJECT); "
            "--force scaffolds its files again, overwriting them")
    elif version in existing.versions:
        files = (render.kind_files(p, existing) if version == existing.hub
                 else render.version_files(p, existing, version))
    else:  # a new version keeps the kind's scope and controller
        existing.versions.append(version)
        files = render.version_files(p, existing, version)
    return _commit(folder, p, files, force=force, generate=generate)


def create_webhook(folder: Path, *, group: str, version: str, kind: str, defaulting: bool,
                   validation: bool, conversion: bool, force: bool = False,
                   generate: bool = True) -> Outcome:
    """``kuar create webhook``: admission webhooks of a kind (conversion comes with versions)."""
    p = Project.load(folder)
    full_group(group, p.domain)
    check_version(version)
    check_kind(kind)
    if not (defaulting or validation or conversion):
        raise ScaffoldError("say which webhooks: --defaulting, --validation and/or --conversion")
    r = p.find(group, kind)
    if r is None or version not in r.versions:
        raise ScaffoldError(f"no kind {kind} in {group}.{p.domain}/{version}: run kuar create "
                            f"api --group {group} --version {version} --kind {kind} first")
    if conversion and len(r.versions) < 2:
        raise ScaffoldError(
            f"{kind} has one version ({r.hub}): nothing to convert. `kuar create api --group "
            f"{group} --version <new> --kind {kind}` adds a version with its conversion")
    if (defaulting or validation) and (r.defaulting or r.validation) and not force:
        raise ScaffoldError(f"{kind} already has webhooks (PROJECT); --force scaffolds them "
                            "again, overwriting their files")
    files: list[File] = []
    if defaulting or validation:
        r.defaulting = version if defaulting else None
        r.validation = version if validation else None
        files = render.webhook_files(p, r, version, defaulting=defaulting,
                                     validation=validation)
    return _commit(folder, p, files, force=force, generate=generate)


def run_generators(folder: Path, p: Project) -> list[str]:
    """Run ``kuar generate`` for CRDs, RBAC and webhooks in ``folder``, as the Makefile does."""
    service = f"{p.namespace}/{p.project}-webhook-service"
    commands = []
    if p.resources:
        commands.append(["crds", f"{p.package}.api", "--conversion-service", service,
                         "-d", "deploy/crds"])
    commands.append(["rbac", f"{p.package}.rbac", "-d", "deploy/rbac"])
    if p.webhooks:
        commands.append(["webhooks", f"{p.package}.wiring", "--service", service,
                         "-d", "deploy/webhooks"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(folder / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    # one interpreter for every generator: importing kuar is most of each one's time
    script = ("import json, sys\nfrom kuar.cli.main import cli\n"
              "for args in json.loads(sys.argv[1]):\n"
              "    try:\n"
              "        cli.main(['generate', *args], standalone_mode=False)\n"
              "    except Exception as exc:\n"
              "        sys.exit(f'kuar generate {\" \".join(args)}: {exc}')\n")
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(commands)],
                          cwd=folder, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ScaffoldError(f"{proc.stderr.strip()} (after the files were written)")
    return [f"kuar generate {' '.join(args)}" for args in commands]


__all__ = ["PROJECT_FILE", "Outcome", "create_api", "create_webhook", "init_project",
           "run_generators"]
