"""What every ``kuar generate`` command shares: the folder and check options, and writing.

Place in the pipeline: imported by the generator modules of :mod:`kuar.cli.generate`
(``crds``, ``rbac``, ``webhooks``, ``models``), never the other way round. A generator renders
``file name -> text`` with a library function and hands it to :func:`emit`, which prints the
files (no ``--output-dir``), writes them, or compares them with the files on disk
(``--check``, used by ``make lint``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import click

from kuar.webhook.configuration import ServiceTarget

F = TypeVar("F", bound=Callable[..., Any])


def output_dir_option(help: str, *, required: bool = False) -> Callable[[F], F]:
    """``-d/--output-dir DIR``: the folder a generator writes into (kuar's flag scheme)."""
    return click.option("-d", "--output-dir", "out_dir", type=click.Path(path_type=Path),
                        required=required, default=None, help=help)


def check_option(what: str = "missing or stale") -> Callable[[F], F]:
    """``--check``: write nothing; exit 1 when the files in the output folder are ``what``."""
    return click.option("--check", is_flag=True,
                        help=f"Write nothing; exit 1 when the files in --output-dir are {what}.")


def project_on_path() -> None:
    """Let MODULE arguments name the project's own modules (``.`` first, as ``python -m``)."""
    if "." not in sys.path:
        sys.path.insert(0, ".")


def import_module(module: str) -> ModuleType:
    """Import ``module`` of the project being worked on."""
    project_on_path()
    return importlib.import_module(module)


def service_target(service: str) -> ServiceTarget:
    """``NAMESPACE/NAME[:PORT]`` -> a :class:`ServiceTarget` (port 443 by default)."""
    namespace, _, rest = service.partition("/")
    name, _, port = rest.partition(":")
    if not namespace or not name or (port and not port.isdigit()):
        raise click.UsageError(f"expected NAMESPACE/NAME[:PORT], got {service!r}")
    return ServiceTarget(namespace=namespace, name=name, port=int(port or 443))


def stale(out_dir: Path, files: dict[str, str]) -> list[str]:
    """The files of ``files`` that are missing from ``out_dir`` or differ there."""
    return [
        f"{out_dir / name}: missing or stale" for name, text in sorted(files.items())
        if not (out_dir / name).exists() or (out_dir / name).read_text() != text
    ]


def emit(
    files: dict[str, str], out_dir: Path | None, *, check: bool, what: str, regenerate: str,
    problems: list[str] | None = None,
) -> None:
    """Print ``files`` (no ``--output-dir``), write them into ``out_dir``, or ``--check`` them.

    ``problems`` overrides the default staleness check (a file missing or different) when a
    generator knows more, e.g. orphaned files.
    """
    if check:
        if out_dir is None:
            raise click.UsageError("--check needs --output-dir DIR")
        if problems is None:
            problems = stale(out_dir, files)
        for line in problems:
            click.echo(line, err=True)
        if problems:
            click.echo(f"run: {regenerate} --output-dir {out_dir}", err=True)
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
