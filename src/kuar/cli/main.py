"""The ``kuar`` entry point: registers the subcommands and the application plugins.

Place in the pipeline: the console script ``kuar`` and ``python -m kuar.cli`` call
:func:`main`. Flag scheme of every command (README, "Command-line conventions"):
``-o/--output FORMAT`` is how a command prints its results (``json``, or the command's human
form, the default), only on commands that print results; ``-d/--output-dir DIR`` is the
folder a command writes files into; single files have their own names (``--kubeconfig``,
``--html``, ``-f/--filename``); failures are one ``error: ...`` line (:class:`KuarGroup`).
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click

from kuar import __version__
from kuar.cli._common import KuarGroup
from kuar.cli.apply import apply
from kuar.cli.controlplane import controlplane, node_group, up
from kuar.cli.generate import generate
from kuar.cli.image import image
from kuar.cli.scaffold import create, init


@click.group(cls=KuarGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kuar")
def cli() -> None:
    """kuar: a Python toolkit for extending Kubernetes."""


cli.add_command(controlplane)
cli.add_command(up)
cli.add_command(node_group)
cli.add_command(apply)
cli.add_command(generate)
cli.add_command(image)
cli.add_command(init)
cli.add_command(create)


def _load_plugins() -> None:
    """Add the commands that installed applications register (entry point group kuar.cli).

    The toolkit's CLI depends on no application: ``kuar loadtest`` and ``kuar demo`` come
    from kuar_loadtest and kuar_demo this way, as kubectl plugins do for kubectl.
    """
    for entry in entry_points(group="kuar.cli"):
        if entry.name in cli.commands:
            continue
        try:
            cli.add_command(entry.load(), entry.name)
        except Exception as exc:  # a broken plugin must not break the other commands
            click.echo(f"warning: kuar plugin {entry.name!r} not loaded: {exc}", err=True)


_load_plugins()


def main() -> None:
    """Run the CLI."""
    cli()
