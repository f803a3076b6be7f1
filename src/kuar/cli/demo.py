"""``kuar demo``: the seed's story on a local control plane, shown with the real kubectl.

For now it starts the control plane, shows ``kubectl get loadtests`` before the CRD exists,
installs the seed's LoadTest CRD, lists again, creates the seed's ``my-loadtest`` and lists
once more. The LoadTest operator issue turns it into the full load-test demo.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from importlib import resources
from pathlib import Path

import click

from kuar.cli._common import StopSignal, friendly_errors
from kuar.cli.controlplane import install_with_progress
from kuar.client import Client, apply_manifests, load_config, parse_manifests
from kuar.testing import ControlPlane, ControlPlaneSettings


def seed_manifest(name: str) -> tuple[str, str]:
    """The text of a seed manifest shipped with kuar_loadtest, and a name for messages."""
    ref = resources.files("kuar_loadtest") / "seed" / name
    return ref.read_text(), f"kuar_loadtest/seed/{name}"


async def _apply_seed(kubeconfig: Path, name: str) -> None:
    text, source = seed_manifest(name)
    client = Client(await load_config(kubeconfig))
    try:
        await apply_manifests(client, parse_manifests(text, source=source), field_manager="kuar")
    finally:
        await client.close()


@click.command("demo")
@click.option("--keep", is_flag=True, help="Keep the control plane running until Ctrl-C.")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None,
              help="Also write the admin kubeconfig here.")
@friendly_errors
def demo(keep: bool, kubeconfig: Path | None) -> None:
    """Start a local control plane and walk through the seed's LoadTest CRD."""
    stop = StopSignal()
    install_with_progress()
    plane = ControlPlane(ControlPlaneSettings())
    click.echo("starting etcd and kube-apiserver on 127.0.0.1 ...")
    try:
        plane.start()
    except KeyboardInterrupt:
        sys.exit(130)
    stop.starting = False
    try:
        assert plane.assets is not None
        kubectl_bin = str(plane.assets.path("kubectl"))
        config = plane.write_kubeconfig(kubeconfig) if kubeconfig else plane.kubeconfig

        def kubectl(*args: str) -> None:
            click.echo(f"$ kubectl {' '.join(args)}")
            proc = subprocess.run(
                [kubectl_bin, f"--kubeconfig={config}", *args],
                capture_output=True, text=True, check=False, timeout=60,
            )
            out = (proc.stdout + proc.stderr).rstrip()
            click.echo(out)

        click.echo(f"control plane ready at {plane.server}\n")
        kubectl("get", "loadtests")
        click.echo("\n# installing the seed's CustomResourceDefinition loadtests.beta.kuar.com")
        asyncio.run(_apply_seed(config, "loadtest-crd.yaml"))
        kubectl("get", "loadtests")
        click.echo("\n# creating the seed's my-loadtest")
        asyncio.run(_apply_seed(config, "my-loadtest.yaml"))
        kubectl("get", "loadtests")
        kubectl("get", "lt", "my-loadtest", "-o", "jsonpath={.spec}")
        click.echo("")
        if keep:
            click.echo(f"\nkubeconfig: {config}\ntry: {kubectl_bin} --kubeconfig {config} get lt")
            click.echo("press Ctrl-C to stop", err=True)
            stop.event.wait()
    finally:
        plane.stop()
        click.echo("control plane stopped")
