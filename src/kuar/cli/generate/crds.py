"""``kuar generate crds MODULE``: write (or check) the CRDs declared by typed resources.

Place in the pipeline: thin; :func:`kuar.resources.crd.render_crds` does the work and
:func:`._files.emit` prints, writes or checks the files (``deploy/crds/`` for kuar's own).
"""

from __future__ import annotations

from pathlib import Path

import click

from kuar.cli.generate._files import (
    check_option,
    emit,
    output_dir_option,
    project_on_path,
    service_target,
)
from kuar.resources.crd import GENERATED_MARK, render_crds
from kuar.resources.schema import DeclarationError
from kuar.webhook.configuration import conversion_stanza


def _stale(out_dir: Path, files: dict[str, str]) -> list[str]:
    problems = []
    for name, text in sorted(files.items()):
        path = out_dir / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text() != text:
            problems.append(f"{path}: differs from the generated CRD")
    if out_dir.is_dir():
        for path in sorted(out_dir.glob("*.yaml")):
            if path.name not in files and GENERATED_MARK in path.read_text():
                problems.append(f"{path}: generated earlier, but no class declares it now")
    return problems


@click.command("crds")
@click.argument("module")
@output_dir_option("Folder for one YAML file per CRD (default: print to stdout).")
@click.option("--conversion-service", default=None, metavar="NAMESPACE/NAME[:PORT]",
              help="CRDs with several versions convert through the webhook behind this "
                   "Service (path /convert); without it the API server only rewrites "
                   "apiVersion.")
@check_option("missing, stale or orphaned")
def crds(module: str, out_dir: Path | None, conversion_service: str | None,
         check: bool) -> None:
    """Generate a CustomResourceDefinition for each CustomResource class in MODULE."""
    conversion = None
    if conversion_service:
        conversion = conversion_stanza(service_target(conversion_service))
    project_on_path()
    try:
        files = render_crds(module, conversion=conversion)
    except (DeclarationError, ImportError) as exc:
        raise click.ClickException(str(exc)) from exc
    if not files:
        raise click.ClickException(f"{module} declares no CustomResource classes")
    emit(files, out_dir, check=check, what="CRD", regenerate=f"kuar generate crds {module}",
         problems=_stale(out_dir, files) if check and out_dir is not None else None)
