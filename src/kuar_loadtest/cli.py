"""``kuar loadtest ...``: run the LoadTest operator, and report on a finished LoadTest.

Registered as a plugin of the ``kuar`` command (entry point group ``kuar.cli``), so the
toolkit's CLI does not depend on this application. Follows kuar's flag scheme (README,
"Command-line conventions"): ``-o/--output`` is the output format of a command that prints
results; failures raise :class:`click.ClickException`, which ``kuar`` prints as one
``error:`` line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from kuar import __version__
from kuar.client import (
    Api,
    ApiError,
    Client,
    ConfigError,
    NotFound,
    TransportError,
    load_config,
)
from kuar.manager import HealthSettings, LeaderElectionSettings, LeadershipLost
from kuar.manager.leader import pod_namespace
from kuar.manager.logs import LEVELS, configure_logging
from kuar.models.core.v1 import ConfigMap
from kuar.webhook import ServiceTarget
from kuar_loadgen.result import LoadResult
from kuar_loadtest.api.run import LoadTestRun
from kuar_loadtest.api.v2 import LoadTest
from kuar_loadtest.controller import RESULTS_SUFFIX
from kuar_loadtest.desired import LABEL_LOADTEST
from kuar_loadtest.history import runs_of
from kuar_loadtest.operator import OperatorOptions, WebhookOptions, build_manager
from kuar_loadtest.rbac import LEASE
from kuar_loadtest.report import (
    compare_rows,
    history_rows,
    run_figures,
    summary_rows,
    trend_lines,
    write_html,
)
from kuar_loadtest.settings import OperatorSettings
from kuar_loadtest.webhooks import LoadTestWebhookSettings

log = logging.getLogger("kuar_loadtest.operator")
SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path


@click.group("loadtest")
def loadtest() -> None:
    """The LoadTest extension (loadtests.beta.kuar.com)."""


def _in_pod() -> bool:
    """Whether this process runs in a Kubernetes pod (the service-account token is mounted)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and Path(SA_TOKEN).exists()


def _default_host() -> str:
    # Loopback for local runs (the project's rule, and a laptop's metrics stay private); all
    # addresses in a pod, whose kubelet, Prometheus and API server come from outside.
    return "0.0.0.0" if _in_pod() else "127.0.0.1"  # noqa: S104 - a pod's own network


def _bind(flag: str, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{flag} must be HOST:PORT (e.g. 0.0.0.0:8081), got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - ":8081" means all, as in Go


def _webhook_options(service: str | None, url: str | None, host: str, port: int,
                     cert_dir: Path | None, inject_ca: bool | None, signer_namespace: str,
                     max_rps: int) -> WebhookOptions | None:
    if service and url:
        raise ValueError("give --webhook-service or --webhook-url, not both")
    if not service and not url:
        if cert_dir is not None:
            raise ValueError("--cert-dir needs --webhook-service or --webhook-url")
        return None
    target = None
    if service:
        namespace, _, rest = service.partition("/")
        name, _, svc_port = rest.partition(":")
        if not namespace or not name or (svc_port and not svc_port.isdigit()):
            raise ValueError(f"--webhook-service must be NAMESPACE/NAME[:PORT], got {service!r}")
        target = ServiceTarget(namespace=namespace, name=name, port=int(svc_port or 443))
    if url and not url.startswith("https://"):
        raise ValueError(f"--webhook-url must be https://HOST:PORT, got {url!r}")
    if cert_dir is not None and not (cert_dir / "tls.crt").exists():
        raise ValueError(f"--cert-dir {cert_dir} has no tls.crt")
    return WebhookOptions(
        host=host, port=port, service=target, url=url, cert_dir=cert_dir, inject_ca=inject_ca,
        signer_namespace=signer_namespace,
        settings=LoadTestWebhookSettings(max_requests_per_second=max_rps))


@loadtest.command("run")
@click.option("--kubeconfig", default=None,
              help="Kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster).")
@click.option("--namespace", default=None, help="Watch one namespace only.")
@click.option("--leader-elect", is_flag=True, help="Campaign for a Lease (several replicas).")
@click.option("--lease-namespace", default=None,
              help="Namespace of the Lease (default: the pod's, else default).")
@click.option("--max-rps", type=int, default=OperatorSettings().max_requests_per_second,
              show_default=True, help="Operator-wide cap on spec.requestsPerSecond.")
@click.option("--max-concurrent-runs", type=int, default=None,
              help="Runs at once in all namespaces; more wait in phase Queued (default: no cap).")
@click.option("--max-namespace-concurrent-runs", type=int, default=None,
              help="Runs at once per namespace; more wait in phase Queued (default: no cap).")
@click.option("--image", default=OperatorSettings().image, show_default=True,
              help="Load-generator image.")
@click.option("--worker-ca-file", default=None, metavar="PATH",
              help="PEM bundle, at this path inside the worker pods, that verifies https "
                   "targets (default: the worker image's trust store).")
@click.option("--coordinated-start/--no-coordinated-start", default=True, show_default=True,
              help="Start a run's workers together once all its pods are Running (they read "
                   "the start time from the API with a projected token); off: a start time "
                   "fixed when the Job is created.")
@click.option("--runner-start-timeout", type=float,
              default=OperatorSettings().runner_start_timeout, show_default=True,
              help="Seconds a run's worker pods may take to be Running before the run fails "
                   "(RunnersNotStarted).")
@click.option("--allow-endpoint-cidr", "allowed_endpoint_cidrs", multiple=True, metavar="CIDR",
              help="Addresses a target Service without a selector may point at (repeatable; "
                   "default: none, such Services are refused).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Log records on stderr as text or one JSON per line.")
@click.option("--log-level", type=click.Choice(list(LEVELS), case_sensitive=False),
              default="info", show_default=True)
@click.option("--health-bind", default=None, metavar="HOST:PORT",
              help="/healthz and /readyz (default 127.0.0.1:8081; 0.0.0.0:8081 in a pod).")
@click.option("--metrics-bind", default=None, metavar="HOST:PORT",
              help="/metrics (default 127.0.0.1:8080; 0.0.0.0:8080 in a pod).")
@click.option("--webhook-service", default=None, metavar="NAMESPACE/NAME[:PORT]",
              help="Serve the webhooks here; the API server calls them through this Service "
                   "(its DNS names go into the certificate).")
@click.option("--webhook-url", default=None, metavar="https://HOST:PORT",
              help="Serve the webhooks here; the API server calls this URL (local runs).")
@click.option("--webhook-bind", default=None, metavar="HOST",
              help="Address of the webhook server (default 127.0.0.1; 0.0.0.0 in a pod).")
@click.option("--webhook-port", type=int, default=9443, show_default=True)
@click.option("--cert-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Serving certificate from tls.crt/tls.key/ca.crt here (cert-manager) "
                   "instead of the CSR API and kuar's signer.")
@click.option("--inject-ca/--no-inject-ca", default=None,
              help="Write the CA into the webhook configurations and the CRD (default: with "
                   "the CSR API yes, with --cert-dir no).")
@click.option("--signer-namespace", default="kuar-system", show_default=True,
              help="Namespace of the signer's CA Secret and ConfigMap.")
@click.option("--drain-delay", type=float, default=0.0, show_default=True,
              help="Seconds between failing readiness on SIGTERM and stopping the webhooks.")
@click.option("--access-recheck", type=float, default=30.0, show_default=True,
              help="Seconds between checks of the operator's RBAC permissions.")
def run(kubeconfig: str | None, namespace: str | None, leader_elect: bool,
        lease_namespace: str | None, max_rps: int, max_concurrent_runs: int | None,
        max_namespace_concurrent_runs: int | None, image: str, worker_ca_file: str | None,
        coordinated_start: bool, runner_start_timeout: float,
        allowed_endpoint_cidrs: tuple[str, ...], log_format: str, log_level: str,
        health_bind: str | None, metrics_bind: str | None,
        webhook_service: str | None, webhook_url: str | None, webhook_bind: str | None,
        webhook_port: int, cert_dir: Path | None, inject_ca: bool | None,
        signer_namespace: str, drain_delay: float, access_recheck: float) -> None:
    """Run the LoadTest operator in the foreground until SIGTERM/Ctrl-C."""
    configure_logging("json" if log_format == "json" else "text", log_level)
    log.info("kuar-loadtest-operator %s starting (pid %d)", __version__, os.getpid())
    host = _default_host()
    try:
        health_host, health_port = _bind("--health-bind", health_bind or f"{host}:8081")
        metrics_host, metrics_port = _bind("--metrics-bind", metrics_bind or f"{host}:8080")
        webhooks = _webhook_options(webhook_service, webhook_url, webhook_bind or host,
                                    webhook_port, cert_dir, inject_ca, signer_namespace,
                                    max_rps)
    except ValueError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
    options = OperatorOptions(
        settings=OperatorSettings(max_requests_per_second=max_rps, image=image,
                                  ca_file=worker_ca_file,
                                  allowed_endpoint_cidrs=allowed_endpoint_cidrs,
                                  max_concurrent_runs=max_concurrent_runs,
                                  max_namespace_concurrent_runs=max_namespace_concurrent_runs,
                                  coordinated_start=coordinated_start,
                                  runner_start_timeout=runner_start_timeout),
        namespace=namespace,
        leader_election=LeaderElectionSettings(name=LEASE,
                                               namespace=lease_namespace or pod_namespace())
        if leader_elect else None,
        health=HealthSettings(host=health_host, port=health_port, metrics_host=metrics_host,
                              metrics_port=metrics_port),
        webhooks=webhooks, drain_delay=drain_delay, access_recheck=access_recheck,
    )
    log.info("watching %s; leader election %s; webhooks %s; probes %s:%d; metrics %s:%d",
             f"namespace {namespace}" if namespace else "all namespaces",
             f"on (lease {options.leader_election.namespace}/{LEASE})"
             if options.leader_election else "off",
             _describe(webhooks), health_host, health_port, metrics_host, metrics_port)

    async def main() -> None:
        client = Client(await load_config(kubeconfig))
        log.info("API server %s", client.config.server)
        try:
            await build_manager(client, options).run()
        finally:
            await client.close()

    try:
        asyncio.run(main())
    except (ConfigError, ApiError, TransportError, LeadershipLost, OSError,
            TimeoutError) as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        raise SystemExit(1) from None
    log.info("stopped")


def _describe(webhooks: WebhookOptions | None) -> str:
    if webhooks is None:
        return "off"
    target = webhooks.url or (webhooks.service.dns_names[0] if webhooks.service else "")
    source = f"files in {webhooks.cert_dir}" if webhooks.cert_dir else "CSR API + kuar signer"
    return (f"on {webhooks.host}:{webhooks.port} for {target}, certificate from {source}, "
            f"CA injection {'on' if webhooks.injects else 'off'}")


async def fetch_report_data(
    client: Client, name: str, namespace: str
) -> tuple[LoadTest, LoadResult | None]:
    """The LoadTest and its merged result, if the controller stored one."""
    lt = await Api(client, LoadTest, namespace=namespace).get(name)
    try:
        cm = await Api(client, ConfigMap, namespace=namespace).get(f"{name}{RESULTS_SUFFIX}")
    except NotFound:
        return lt, None
    raw = (cm.data or {}).get("result.json")
    return lt, LoadResult.from_dict(json.loads(raw)) if raw else None


async def fetch_runs(client: Client, lt: LoadTest) -> list[dict[str, Any]]:
    """The LoadTestRun records of ``lt``, oldest first (as stored)."""
    listed = await Api(client, LoadTestRun, namespace=lt.namespace).list(
        label_selector=f"{LABEL_LOADTEST}={lt.name}")
    return [r.encode() for r in runs_of(listed.items, lt)]


def pick_runs(runs: list[dict[str, Any]], lt: LoadTest, compare: str
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--compare RUN``: that run and the LoadTest's last run (or the newest other run)."""
    by_name = {r["metadata"]["name"]: r for r in runs}
    if compare not in by_name:
        known = ", ".join(by_name) or "none"
        raise click.ClickException(f'no LoadTestRun "{compare}" of LoadTest "{lt.name}" '
                                   f"(runs: {known})")
    last = lt.status.last_run if lt.status else None
    if last in by_name and last != compare:
        return by_name[compare], by_name[last]
    others = [r for r in runs if r["metadata"]["name"] != compare]
    if not others:
        raise click.ClickException(f'LoadTest "{lt.name}" has no other run to compare with')
    return by_name[compare], others[-1]


def print_report(lt: LoadTest, result: LoadResult | None, console: Console,
                 runs: list[dict[str, Any]] | None = None) -> None:
    """The report's tables on the terminal: the summary, and the run history's trend."""
    table = Table(title=f"LoadTest {lt.name}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for label, value in summary_rows(lt.encode(), result):
        table.add_row(label, value)
    console.print(table)
    if not runs:
        return
    history = Table(title=f"Runs of {lt.name} (oldest first)")
    for header in ("run", "trigger", "phase", "started", "p50 ms", "p99 ms", "req/s"):
        history.add_column(header)
    for row in history_rows(runs):
        history.add_row(*row)
    console.print(history)
    trend = Table(title="Trend over runs", show_header=False)
    trend.add_column("", style="bold")
    trend.add_column("")
    trend.add_column("")
    for line in trend_lines(runs):
        trend.add_row(*line)
    console.print(trend)


def print_comparison(left: dict[str, Any], right: dict[str, Any], console: Console) -> None:
    """Two runs side by side."""
    table = Table(title="Runs side by side", show_header=False)
    for _ in range(4):
        table.add_column("")
    for row in compare_rows(left, right):
        table.add_row(*row)
    console.print(table)


def report_json(lt: LoadTest, result: LoadResult | None,
                runs: list[dict[str, Any]] | None = None,
                compared: tuple[dict[str, Any], dict[str, Any]] | None = None) -> str:
    """``kuar loadtest report -o json``: the LoadTest, its result, runs and comparison.

    The LoadTest as stored, its merged result, its run records (oldest first) and, with
    ``--compare``, the two runs' figures side by side.
    """
    data: dict[str, Any] = {
        "loadTest": lt.encode(), "result": result.to_dict() if result is not None else None,
        "runs": runs or []}
    if compared is not None:
        data["compare"] = [
            {"run": r["metadata"]["name"], **run_figures(r)} for r in compared]
    return json.dumps(data, indent=2)


@loadtest.command("report")
@click.argument("name")
@click.option("-n", "--namespace", default=None, help="Namespace (default: the context's).")
@click.option("--kubeconfig", default=None, help="Kubeconfig (default: $KUBECONFIG).")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table",
              show_default=True,
              help="table: a summary and an HTML report; json: the LoadTest and its result on "
                   "stdout, nothing written unless --html is given.")
@click.option("--html", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="HTML file to write (default with -o table: ./loadtest-NAME.html).")
@click.option("--compare", "compare", default=None, metavar="RUN",
              help="Put LoadTestRun RUN and the LoadTest's last run side by side.")
def report(name: str, namespace: str | None, kubeconfig: str | None, output: str,
           html: Path | None, compare: str | None) -> None:
    """Print a LoadTest's results and run history; write an HTML report with plots."""

    async def main() -> tuple[LoadTest, LoadResult | None, list[dict[str, Any]]]:
        client = Client(await load_config(kubeconfig))
        try:
            lt, result = await fetch_report_data(client, name, namespace or client.namespace)
            try:
                runs = await fetch_runs(client, lt)
            except NotFound:  # the LoadTestRun CRD is not installed: no history
                runs = []
            return lt, result, runs
        finally:
            await client.close()

    try:
        lt, result, runs = asyncio.run(main())
    except NotFound:
        raise click.ClickException(f'LoadTest "{name}" not found') from None
    except (ConfigError, ApiError, TransportError) as exc:
        raise click.ClickException(str(exc)) from None
    compared = pick_runs(runs, lt, compare) if compare is not None else None
    if output == "json":
        click.echo(report_json(lt, result, runs, compared))
        if html is not None:
            path = write_html(html, lt.encode(), result, list(runs))
            click.echo(f"report: {path.resolve()}", err=True)
        return
    console = Console()
    if compared is not None:
        print_comparison(*compared, console)
    else:
        print_report(lt, result, console, runs)
    path = write_html(html or Path(f"loadtest-{name}.html"), lt.encode(), result, list(runs))
    click.echo(f"report: {path.resolve()}")
