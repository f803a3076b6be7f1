"""``kuar controlplane install`` and ``kuar up``: the local control plane from the terminal."""

from __future__ import annotations

import sys
from pathlib import Path

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


def install_with_progress(force: bool = False) -> Assets:
    """Install (build if needed) the binaries, drawing a progress bar on stderr."""
    found = None if force else find_assets()
    if found is not None:
        return found
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

        return install(progress=progress, force=force)


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
@friendly_errors
def up(kubeconfig: Path, with_controller_manager: bool, with_scheduler: bool) -> None:
    """Run a local control plane in the foreground until Ctrl-C or SIGTERM."""
    stop = StopSignal()
    install_with_progress()
    plane = ControlPlane(
        ControlPlaneSettings(
            with_controller_manager=with_controller_manager, with_scheduler=with_scheduler
        )
    )
    try:
        plane.start()
    except KeyboardInterrupt:
        click.echo("interrupted while starting; stopped", err=True)
        sys.exit(130)
    stop.starting = False
    try:
        plane.write_kubeconfig(kubeconfig)
        assert plane.assets is not None
        click.echo(f"control plane ready at {plane.server}")
        click.echo(f"admin kubeconfig written to {kubeconfig}")
        click.echo(f"try: {plane.assets.path('kubectl')} --kubeconfig {kubeconfig} get namespaces")
        click.echo("press Ctrl-C to stop", err=True)
        sys.stdout.flush()
        while not stop.event.wait(0.5):
            dead = [n for n, p in plane.processes.items() if not p.running]
            if dead:
                click.echo(f"error: {', '.join(dead)} exited unexpectedly:", err=True)
                for name in dead:
                    click.echo(plane.processes[name].log_tail(), err=True)
                sys.exit(1)
    finally:
        plane.stop()
        click.echo("control plane stopped", err=True)
