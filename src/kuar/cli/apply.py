"""``kuar apply -f FILE``: apply YAML all-or-nothing (see :mod:`kuar.client.manifests`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from kuar.cli._common import friendly_errors
from kuar.client import Client, apply_manifests, load_config, load_manifests


async def _apply(path: Path, kubeconfig: str | None, namespace: str | None) -> list[str]:
    docs = load_manifests(path)  # parse everything before connecting
    client = Client(await load_config(kubeconfig))
    try:
        applied = await apply_manifests(
            client, docs, namespace=namespace or client.namespace, field_manager="kuar-cli"
        )
    finally:
        await client.close()
    return [f"{o['kind'].lower()}/{o['metadata']['name']} applied" for o in applied]


@click.command("apply")
@click.option("-f", "--filename", "path", type=click.Path(path_type=Path), required=True,
              help="A YAML file with one or more objects.")
@click.option("--kubeconfig", default=None, help="Kubeconfig path (default: $KUBECONFIG).")
@click.option("-n", "--namespace", default=None, help="Namespace for namespaced objects.")
@friendly_errors
def apply(path: Path, kubeconfig: str | None, namespace: str | None) -> None:
    """Apply every object in a YAML file by server-side apply, or none of them."""
    for line in asyncio.run(_apply(path, kubeconfig, namespace)):
        click.echo(line)
