"""``kuar loadtest ...``: run the LoadTest operator, and report on a finished LoadTest.

Registered as a plugin of the ``kuar`` command (entry point group ``kuar.cli``), so the
toolkit's CLI does not depend on this application.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from kuar.client import ApiError, Client, ConfigError, NotFound, TransportError, load_config
from kuar.manager import HealthSettings, LeaderElectionSettings
from kuar_loadgen.result import LoadResult
from kuar_loadtest.controller import LOADTESTS, RESULTS_SUFFIX
from kuar_loadtest.operator import OperatorOptions, build_manager
from kuar_loadtest.report import summary_rows, write_html
from kuar_loadtest.settings import OperatorSettings


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(1)


@click.group("loadtest")
def loadtest() -> None:
    """The LoadTest extension (loadtests.beta.kuar.com)."""


@loadtest.command("run")
@click.option("--kubeconfig", default=None, help="Kubeconfig (default: $KUBECONFIG, in-cluster).")
@click.option("--namespace", default=None, help="Watch one namespace only.")
@click.option("--leader-elect", is_flag=True, help="Campaign for a Lease (several replicas).")
@click.option("--lease-namespace", default="default", show_default=True)
@click.option("--max-rps", type=int, default=OperatorSettings().max_requests_per_second,
              show_default=True, help="Operator-wide cap on spec.requestsPerSecond.")
@click.option("--image", default=OperatorSettings().image, show_default=True,
              help="Load-generator image.")
@click.option("--health-port", type=int, default=8081, show_default=True,
              help="Port of /healthz, /readyz and /metrics (127.0.0.1).")
def run(kubeconfig: str | None, namespace: str | None, leader_elect: bool,
        lease_namespace: str, max_rps: int, image: str, health_port: int) -> None:
    """Run the LoadTest controller in the foreground until SIGTERM/Ctrl-C."""
    options = OperatorOptions(
        settings=OperatorSettings(max_requests_per_second=max_rps, image=image),
        namespace=namespace,
        leader_election=LeaderElectionSettings(name="kuar-loadtest-operator",
                                               namespace=lease_namespace)
        if leader_elect else None,
        health=HealthSettings(port=health_port),
    )

    async def main() -> None:
        client = Client(await load_config(kubeconfig))
        try:
            await build_manager(client, options).run()
        finally:
            await client.close()

    try:
        asyncio.run(main())
    except (ConfigError, ApiError, TransportError) as exc:
        _fail(str(exc))


async def fetch_report_data(
    client: Client, name: str, namespace: str
) -> tuple[dict[str, Any], LoadResult | None]:
    """The LoadTest (as a dict) and its merged result, if the controller stored one."""
    lt: dict[str, Any] = await client.request("GET", LOADTESTS.path(namespace, name))
    try:
        cm = await client.request(
            "GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}{RESULTS_SUFFIX}"
        )
    except NotFound:
        return lt, None
    raw = (cm.get("data") or {}).get("result.json")
    return lt, LoadResult.from_dict(json.loads(raw)) if raw else None


def print_report(lt: dict[str, Any], result: LoadResult | None, console: Console) -> None:
    """The report's table on the terminal."""
    table = Table(title=f"LoadTest {lt['metadata']['name']}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for label, value in summary_rows(lt, result):
        table.add_row(label, value)
    console.print(table)


@loadtest.command("report")
@click.argument("name")
@click.option("-n", "--namespace", default=None, help="Namespace (default: the context's).")
@click.option("--kubeconfig", default=None, help="Kubeconfig (default: $KUBECONFIG).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="HTML file to write (default: ./loadtest-NAME.html).")
def report(name: str, namespace: str | None, kubeconfig: str | None,
           output: Path | None) -> None:
    """Print a LoadTest's results and write an HTML report with plots."""

    async def main() -> tuple[dict[str, Any], LoadResult | None]:
        client = Client(await load_config(kubeconfig))
        try:
            return await fetch_report_data(client, name, namespace or client.namespace)
        finally:
            await client.close()

    try:
        lt, result = asyncio.run(main())
    except NotFound:
        _fail(f'LoadTest "{name}" not found')
        return
    except (ConfigError, ApiError, TransportError) as exc:
        _fail(str(exc))
        return
    print_report(lt, result, Console())
    path = write_html(output or Path(f"loadtest-{name}.html"), lt, result)
    click.echo(f"report: {path.resolve()}")
