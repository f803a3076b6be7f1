"""``kuar apply -f FILE``: apply YAML all-or-nothing (see :mod:`kuar.client.manifests`).

Place in the pipeline: thin; parses with :func:`kuar.client.load_manifests` before connecting,
then :func:`kuar.client.apply_manifests`. ``-o json`` prints what the server stored.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from kuar.cli._common import friendly_errors
from kuar.client import Client, apply_manifests, load_config, load_manifests


async def _apply(path: Path, kubeconfig: str | None, namespace: str | None
                 ) -> list[dict[str, Any]]:
    docs = load_manifests(path)  # parse everything before connecting
    client = Client(await load_config(kubeconfig))
    try:
        return await apply_manifests(
            client, docs, namespace=namespace or client.namespace, field_manager="kuar-cli"
        )
    finally:
        await client.close()


@click.command("apply")
@click.option("-f", "--filename", "path", type=click.Path(path_type=Path), required=True,
              help="A YAML file with one or more objects.")
@click.option("--kubeconfig", default=None, help="Kubeconfig path (default: $KUBECONFIG).")
@click.option("-n", "--namespace", default=None, help="Namespace for namespaced objects.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text",
              show_default=True,
              help="text: one 'kind/name applied' line per object; json: the applied objects "
                   "as a v1 List.")
@friendly_errors
def apply(path: Path, kubeconfig: str | None, namespace: str | None, output: str) -> None:
    """Apply every object in a YAML file by server-side apply, or none of them."""
    applied = asyncio.run(_apply(path, kubeconfig, namespace))
    if output == "json":
        click.echo(json.dumps({"apiVersion": "v1", "kind": "List", "items": applied}, indent=2))
        return
    for obj in applied:
        click.echo(f"{obj['kind'].lower()}/{obj['metadata']['name']} applied")
