"""``kuar controlplane install``, ``kuar node install``, ``kuar up``: the local cluster."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from kuar.cli._common import StopSignal, friendly_errors
from kuar.testing import ControlPlane, ControlPlaneSettings, find_assets, install
from kuar.testing.assets import Assets
from kuar.testing.assets import Progress as AssetsProgress

T = TypeVar("T")


def install_with_progress(force: bool = False) -> Assets:
    """Install (build if needed) the binaries, drawing a progress bar on stderr."""
    found = None if force else find_assets()
    if found is not None:
        return found
    return with_progress(lambda progress: install(progress=progress, force=force))


def with_progress(build: Callable[[AssetsProgress], T]) -> T:
    """Run ``build(progress)`` drawing one bar per build step on stderr (packages compiled)."""
    console = Console(stderr=True)
    with Progress(
        TextColumn("building {task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("packages"), TimeElapsedColumn(), console=console, transient=False,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        return build(progress)


@click.group("controlplane")
def controlplane() -> None:
    """Manage the local control-plane binaries (etcd, kube-apiserver, ...)."""


@controlplane.command("install")
@click.option("--force", is_flag=True, help="Rebuild even if cached (ignores KUBEBUILDER_ASSETS).")
@friendly_errors
def install_cmd(force: bool) -> None:
    """Build the control-plane binaries once (cached); print their folder as the last line."""
    assets = install_with_progress(force)
    click.echo(str(assets.directory))


@click.command("up")
@click.option("--kubeconfig", "kubeconfig", type=click.Path(path_type=Path), required=True,
              help="Where to write the admin kubeconfig once the API server is ready.")
@click.option("--with-controller-manager", is_flag=True, help="Also run kube-controller-manager.")
@click.option("--with-scheduler", is_flag=True, help="Also run kube-scheduler.")
@click.option("--node", type=click.Choice(["none", "real"]), default="none", show_default=True,
              help="real: also run a real node (kubelet, containerd, CNI bridge, kube-proxy, "
                   "CoreDNS; needs root and `make node-tools`); implies the controller-manager "
                   "and the scheduler.")
@click.option("--image-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="With --node real: import the images of this `kuar image build` output "
                   "folder (its images.json) into the node's containerd.")
@friendly_errors
def up(kubeconfig: Path, with_controller_manager: bool, with_scheduler: bool, node: str,
       image_dir: Path | None) -> None:
    """Run a local control plane in the foreground until Ctrl-C or SIGTERM."""
    from kuar.testing.realnode import (
        RealNode,
        RealNodeSettings,
        image_archives,
        plane_settings,
    )
    from kuar.testing.realnode import install as install_node

    stop = StopSignal()
    install_with_progress()
    real = node == "real"
    if real:
        with_progress(lambda progress: install_node(progress=progress))
    plane = ControlPlane(plane_settings() if real else ControlPlaneSettings(
        with_controller_manager=with_controller_manager, with_scheduler=with_scheduler))
    real_node = RealNode(plane, RealNodeSettings(
        images=image_archives(image_dir) if image_dir else ())) if real \
        else None
    try:
        plane.start()
        if real_node is not None:
            real_node.start()
    except KeyboardInterrupt:
        if real_node is not None:
            real_node.stop()
        plane.stop()
        click.echo("interrupted while starting; stopped", err=True)
        sys.exit(130)
    except BaseException:
        plane.stop()
        raise
    stop.starting = False
    try:
        plane.write_kubeconfig(kubeconfig)
        assert plane.assets is not None
        click.echo(f"control plane ready at {plane.server}")
        if real_node is not None:
            click.echo(f"node {real_node.settings.name} Ready in {real_node.times.total:.1f} s "
                       f"(pods on {real_node.settings.pod_cidr}, bridge "
                       f"{real_node.settings.bridge}, cluster DNS "
                       f"{real_node.settings.cluster_dns})")
        click.echo(f"admin kubeconfig written to {kubeconfig}")
        click.echo(f"try: {plane.assets.path('kubectl')} --kubeconfig {kubeconfig} get namespaces")
        click.echo("press Ctrl-C to stop", err=True)
        sys.stdout.flush()
        processes = {**plane.processes, **(real_node.processes if real_node else {})}
        while not stop.event.wait(0.5):
            dead = [n for n, p in processes.items() if not p.running]
            if dead:
                click.echo(f"error: {', '.join(dead)} exited unexpectedly:", err=True)
                for name in dead:
                    click.echo(processes[name].log_tail(), err=True)
                sys.exit(1)
    finally:
        if real_node is not None:
            real_node.stop()
            click.echo("node stopped", err=True)
        plane.stop()
        click.echo("control plane stopped", err=True)


@click.group("node")
def node_group() -> None:
    """Manage the real node's parts (kubelet, kube-proxy, crictl, CoreDNS, pause image)."""


@node_group.command("install")
@friendly_errors
def node_install_cmd() -> None:
    """Build the real node's parts once (cached); print their folder as the last line."""
    from kuar.testing.realnode import install as install_node

    found = with_progress(lambda progress: install_node(progress=progress))
    click.echo(str(found.directory))
