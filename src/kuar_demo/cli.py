"""``kuar demo``: registered as a plugin command of ``kuar`` (entry point group kuar.cli)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import click
from rich.console import Console

from kuar.testing import StartError, find_assets
from kuar_demo.real import run_real_demo
from kuar_demo.run import DemoOptions, run_demo


@click.command("demo")
@click.option("--keep", is_flag=True, help="Keep everything running until Ctrl-C.")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None,
              help="Also write the admin kubeconfig here.")
@click.option("--duration", default=None,
              help="Override my-loadtest's duration (e.g. 20s); the seed's object has none, "
                   "so the CRD default (60s) applies.")
@click.option("-d", "--output-dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path("."), show_default=True, help="Folder for the HTML report.")
@click.option("--node", type=click.Choice(["process", "real"]), default="process",
              show_default=True,
              help="process: pods run as host processes (fast, no root). real: a real node "
                   "(kubelet, containerd, CNI, kube-proxy, CoreDNS; root, `make node-tools`) "
                   "runs the project's images, installed with kubectl apply -k.")
@click.option("--image-dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path("build/images"), show_default=True,
              help="With --node real: the `kuar image build` output (`make images`).")
def demo(keep: bool, kubeconfig: Path | None, duration: str | None, output_dir: Path,
         node: str, image_dir: Path) -> None:
    """The seed's LoadTest end to end on a local cluster: CRD, operator, webhooks, load."""
    console = Console()
    if find_assets() is None:
        from kuar.cli.controlplane import install_with_progress

        install_with_progress()
    if node == "real":
        from kuar.cli.controlplane import with_progress
        from kuar.testing.realnode import find_node_assets
        from kuar.testing.realnode import install as install_node

        if find_node_assets() is None:
            with_progress(lambda progress: install_node(progress=progress))

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        kept = asyncio.Event()
        options = DemoOptions(keep=keep, kubeconfig=kubeconfig, duration=duration,
                              report_dir=output_dir)
        work = asyncio.create_task(
            run_real_demo(options, image_dir, console, stop, kept) if node == "real"
            else run_demo(options, console, stop, kept))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if work not in done and not kept.is_set():
            # interrupted before the demo finished: stop everything it started, cleanly
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            return 130
        stopper.cancel()
        return await work

    try:
        code = asyncio.run(main())
    except StartError as exc:
        raise click.ClickException(str(exc)) from exc
    raise SystemExit(code)
