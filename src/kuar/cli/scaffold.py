"""``kuar init``, ``kuar create api``, ``kuar create webhook``: kubebuilder's workflow.

Thin: :mod:`kuar.scaffold` does the work; bad input is one ``error:`` line, exit 1, and
nothing written.
"""

from __future__ import annotations

from pathlib import Path

import click

from kuar.cli._common import fail
from kuar.scaffold import Outcome, ScaffoldError, create_api, create_webhook, init_project

_FORCE = click.option("--force", is_flag=True,
                      help="Overwrite files this command scaffolds, even your own.")
_DIR = click.option("--dir", "folder", type=click.Path(path_type=Path), default=Path("."),
                    show_default=True, help="The project's folder.")


def _report(outcome: Outcome) -> None:
    for path in outcome.written:
        click.echo(f"wrote {path}")
    for command in outcome.generated:
        click.echo(f"ran {command}")


@click.command("init")
@click.argument("folder", type=click.Path(path_type=Path), default=Path("."))
@click.option("--domain", required=True, help="Appended to every API group (example.com).")
@click.option("--project", default=None, help="Project name (default: the folder's name).")
@_FORCE
def init(folder: Path, domain: str, project: str | None, force: bool) -> None:
    """Create a new operator project in FOLDER (default: here; it must be empty)."""
    try:
        _report(init_project(folder, domain=domain, project=project, force=force))
    except ScaffoldError as exc:
        fail(str(exc))
    click.echo(f"next: cd {folder} && kuar create api --group GROUP --version v1 --kind Kind")


@click.group("create")
def create() -> None:
    """Add a kind (api) or webhooks to the project."""


@create.command("api")
@click.option("--group", required=True, help="API group before the domain (batch).")
@click.option("--version", required=True, help="vN, vNalphaM or vNbetaM.")
@click.option("--kind", required=True, help="CamelCase kind (CronJob).")
@click.option("--namespaced/--cluster", default=True, help="Scope of the kind.")
@click.option("--controller/--no-controller", default=True, help="Scaffold a controller.")
@_FORCE
@_DIR
def api(group: str, version: str, kind: str, namespaced: bool, controller: bool, force: bool,
        folder: Path) -> None:
    """A kind (types, controller, CRD, RBAC, test), or a new version of one (conversion)."""
    try:
        _report(create_api(folder, group=group, version=version, kind=kind,
                           namespaced=namespaced, controller=controller, force=force))
    except ScaffoldError as exc:
        fail(str(exc))


@create.command("webhook")
@click.option("--group", required=True)
@click.option("--version", required=True)
@click.option("--kind", required=True)
@click.option("--defaulting", is_flag=True, help="A mutating webhook that sets defaults.")
@click.option("--validation", is_flag=True, help="A validating webhook.")
@click.option("--conversion", is_flag=True,
              help="Conversion between versions (scaffolded with each new version).")
@_FORCE
@_DIR
def webhook(group: str, version: str, kind: str, defaulting: bool, validation: bool,
            conversion: bool, force: bool, folder: Path) -> None:
    """Admission webhooks of a kind, their configurations and tests through the API server."""
    try:
        _report(create_webhook(folder, group=group, version=version, kind=kind,
                               defaulting=defaulting, validation=validation,
                               conversion=conversion, force=force))
    except ScaffoldError as exc:
        fail(str(exc))
