"""``kuar generate crds MODULE``: write (or check) the CRDs declared by typed resources.

Thin: :func:`kuar.resources.crd.render_crds` does the work; this module writes files, prints
to stdout, or compares with committed files (``--check``, used by CI).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kuar.resources.crd import GENERATED_MARK, render_crds
from kuar.resources.schema import DeclarationError


@click.group("generate")
def generate() -> None:
    """Generate files from code (CRDs)."""


def emit(
    files: dict[str, str], out_dir: Path | None, *, check: bool, what: str, regenerate: str,
    problems: list[str] | None = None,
) -> None:
    """Print ``files`` (no ``-o``), write them into ``out_dir``, or ``--check`` them.

    Shared by every ``kuar generate`` command. ``problems`` overrides the default staleness
    check (a file missing or different) when a generator knows more, e.g. orphaned files.
    """
    if check:
        if out_dir is None:
            raise click.UsageError("--check needs -o DIR")
        if problems is None:
            problems = [
                f"{out_dir / name}: missing or stale" for name, text in sorted(files.items())
                if not (out_dir / name).exists() or (out_dir / name).read_text() != text
            ]
        for line in problems:
            click.echo(line, err=True)
        if problems:
            click.echo(f"run: {regenerate} -o {out_dir}", err=True)
            sys.exit(1)
        click.echo(f"{len(files)} {what} file(s) in {out_dir} are up to date")
        return
    if out_dir is None:
        click.echo("---\n".join(files.values()), nl=False)
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(files.items()):
        (out_dir / name).write_text(text)
        click.echo(f"wrote {out_dir / name}")


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


@generate.command("crds")
@click.argument("module")
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for one YAML file per CRD (default: print to stdout).")
@click.option("--conversion-service", default=None, metavar="NAMESPACE/NAME[:PORT]",
              help="CRDs with several versions convert through the webhook behind this "
                   "Service (path /convert); without it the API server only rewrites "
                   "apiVersion.")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 when the files in -o are missing or stale.")
def crds(module: str, out_dir: Path | None, conversion_service: str | None,
         check: bool) -> None:
    """Generate a CustomResourceDefinition for each CustomResource class in MODULE."""
    sys.path.insert(0, ".")  # a module of the project being worked on, as python -m does
    conversion = None
    if conversion_service:
        from kuar.cli.generate_webhooks import service_target
        from kuar.webhook.configuration import conversion_stanza

        conversion = conversion_stanza(service_target(conversion_service))
    try:
        files = render_crds(module, conversion=conversion)
    except (DeclarationError, ImportError) as exc:
        raise click.ClickException(str(exc)) from exc
    if not files:
        raise click.ClickException(f"{module} declares no CustomResource classes")
    emit(files, out_dir, check=check, what="CRD", regenerate=f"kuar generate crds {module}",
         problems=_stale(out_dir, files) if check and out_dir is not None else None)
