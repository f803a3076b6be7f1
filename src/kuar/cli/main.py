"""The ``kuar`` entry point: registers the subcommands."""

from __future__ import annotations

import click

from kuar import __version__
from kuar.cli.apply import apply
from kuar.cli.controlplane import controlplane, up
from kuar.cli.demo import demo
from kuar.cli.generate import generate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kuar")
def cli() -> None:
    """kuar: a Python toolkit for extending Kubernetes."""


cli.add_command(controlplane)
cli.add_command(up)
cli.add_command(apply)
cli.add_command(demo)
cli.add_command(generate)


def main() -> None:
    """Run the CLI."""
    cli()
