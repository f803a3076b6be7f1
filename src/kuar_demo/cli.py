"""``kuar demo``: registered as a plugin command of ``kuar`` (entry point group kuar.cli)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import click
from rich.console import Console

from kuar.testing import StartError, find_assets
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
def demo(keep: bool, kubeconfig: Path | None, duration: str | None, output_dir: Path) -> None:
    """The seed's LoadTest end to end on a local cluster: CRD, operator, webhooks, load."""
    console = Console()
    if find_assets() is None:
        from kuar.cli.controlplane import install_with_progress

        install_with_progress()

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        kept = asyncio.Event()
        work = asyncio.create_task(run_demo(
            DemoOptions(keep=keep, kubeconfig=kubeconfig, duration=duration,
                        report_dir=output_dir), console, stop, kept))
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
