"""The demo, step by step: local cluster, operator with webhooks, demo service, my-loadtest.

Place in the pipeline: ``kuar demo`` (:mod:`kuar_demo.cli`) calls :func:`run_demo`. It uses
the toolkit's test harness for the cluster (control plane, controller-manager, scheduler,
local node) and runs the LoadTest operator exactly as ``kuar loadtest run`` would, plus its
webhooks served on 127.0.0.1 with a self-signed CA.

Guarantees: interrupted (Ctrl-C) at any point, it stops what it started and removes its
folders, even while the control plane is still starting (the start is let finish in its
thread, then undone); folders left by a SIGKILLed run (``kuar-demo-*``, ``kuar-cp-*``,
``kuar-node-*``) are swept by the next run once their owner pid is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from kuar.base.files import write_private
from kuar.base.pki import CertificateAuthority, KeyPair
from kuar.client import Api, Client, apply_manifests, load_config, parse_manifests
from kuar.testing import ControlPlane, ControlPlaneSettings
from kuar.testing.localnode import LocalNode, LocalNodeSettings
from kuar.testing.process import Process
from kuar.testing.tempdirs import owned_tempdir
from kuar_loadtest.api.status import LoadTestStatus
from kuar_loadtest.api.v2 import LoadTest
from kuar_loadtest.cli import fetch_report_data, print_report
from kuar_loadtest.desired import parse_duration
from kuar_loadtest.local import RESOLVE_ENV, local_runners, local_webhooks
from kuar_loadtest.operator import OperatorOptions, build_manager
from kuar_loadtest.report import write_html
from kuar_loadtest.settings import OperatorSettings

NAMESPACE = "default"
SERVICE = "my-service"
TARGET_PORT = 8443


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    """What ``kuar demo`` was asked to do."""

    keep: bool = False
    kubeconfig: Path | None = None
    duration: str | None = None
    latency_ms: float = 5.0
    report_dir: Path = Path(".")
    stall_at: float | None = None


def seed_object(name: str) -> dict[str, Any]:
    """A seed manifest shipped with kuar_loadtest (the chapter's YAML, unchanged)."""
    text = (resources.files("kuar_loadtest") / "seed" / name).read_text()
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_port(port: int, process: Process, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.exit_code() is not None:
            raise RuntimeError(f"demo service exited:\n{process.log_tail()}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("demo service did not listen in time")


def write_service_certificates(
    workdir: Path, ca: CertificateAuthority, pair: KeyPair
) -> tuple[Path, Path, Path]:
    """The demo service's ``tls.crt``, ``tls.key`` (0600 from the start) and ``ca.crt``."""
    cert, key, ca_file = workdir / "tls.crt", workdir / "tls.key", workdir / "ca.crt"
    ca_file.write_bytes(ca.cert_pem)
    cert.write_bytes(pair.cert_pem)
    write_private(key, pair.key_pem)
    return cert, key, ca_file


@contextlib.asynccontextmanager
async def demo_service(
    client: Client, node: LocalNode, workdir: Path, options: DemoOptions
) -> AsyncIterator[Path]:
    """Run the HTTPS demo service and publish it as Service ``my-service``; yields the CA path."""
    ca = CertificateAuthority.create("kuar-demo-ca")
    names = [SERVICE, f"{SERVICE}.{NAMESPACE}", f"{SERVICE}.{NAMESPACE}.svc",
             f"{SERVICE}.{NAMESPACE}.svc.cluster.local"]
    pair = ca.issue_serving(names, validity=dt.timedelta(days=1))
    write_service_certificates(workdir, ca, pair)
    port = _free_port()
    argv = [sys.executable, "-m", "kuar_demo.service", "--port", str(port),
            "--latency-ms", str(options.latency_ms),
            "--cert", str(workdir / "tls.crt"), "--key", str(workdir / "tls.key")]
    if options.stall_at is not None:
        argv += ["--stall-at", str(options.stall_at), "--stall-for", "1"]
    process = Process("demo-service", argv, workdir)
    process.start()
    try:
        await _wait_port(port, process)
        await node.publish(NAMESPACE, SERVICE, port, port=443, target_port=TARGET_PORT,
                           port_name="https", field_manager="kuar-demo")
        yield workdir / "ca.crt"
    finally:
        await asyncio.to_thread(process.stop, 5.0)


async def _follow(client: Client, name: str, duration: float, console: Console) -> LoadTest:
    """Show the run's progress until it ends; return the final LoadTest."""
    loadtests = Api(client, LoadTest, namespace=NAMESPACE)
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("waiting for the controller", total=duration)
        started: float | None = None
        while True:
            lt = await loadtests.get(name)
            status = lt.status or LoadTestStatus()
            phase = status.phase or "Pending"
            if phase == "Running" and started is None:
                started = time.monotonic()
            elapsed = 0.0 if started is None else time.monotonic() - started
            bar.update(task, completed=min(elapsed, duration),
                       description=f"{name}: {phase} - {(status.message or '')[:60]}")
            if phase in ("Succeeded", "Failed"):
                bar.update(task, completed=duration)
                return lt
            await asyncio.sleep(0.5)


async def run_demo(
    options: DemoOptions, console: Console, stop: asyncio.Event,
    kept: asyncio.Event | None = None,
) -> int:
    """Run the demo; returns the exit code (0 when my-loadtest Succeeded)."""
    console.print("starting etcd, kube-apiserver, kube-controller-manager and kube-scheduler "
                  "on 127.0.0.1 ...")
    plane = ControlPlane(ControlPlaneSettings(with_controller_manager=True, with_scheduler=True))
    starting = asyncio.ensure_future(asyncio.to_thread(plane.start))
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        # Ctrl-C while starting: the start goes on in its thread; let it end, then undo it,
        # or its processes and its folder (with the PKI) would be left behind
        with contextlib.suppress(BaseException):
            await starting
        await asyncio.to_thread(plane.stop)
        raise
    exit_code = 1
    try:
        assert plane.assets is not None
        kubectl_bin = str(plane.assets.path("kubectl"))
        config = plane.write_kubeconfig(options.kubeconfig) if options.kubeconfig \
            else plane.kubeconfig

        async def kubectl(*args: str) -> None:
            console.print(f"[bold]$ kubectl {' '.join(args)}[/bold]")
            proc = await asyncio.to_thread(
                subprocess.run, [*plane.kubectl(config), *args],
                capture_output=True, text=True, check=False, timeout=60,
            )
            console.print((proc.stdout + proc.stderr).rstrip(), markup=False, highlight=False)

        console.print(f"control plane ready at {plane.server}\n")
        await kubectl("get", "loadtests")
        client = Client(await load_config(config))
        tmp = owned_tempdir("kuar-demo-")
        try:
            exit_code = await _with_cluster(client, tmp, options, console, kubectl, stop,
                                            kept or asyncio.Event(), kubectl_bin, config)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        await client.close()
    finally:
        await asyncio.to_thread(plane.stop)
        console.print("control plane stopped")
    return exit_code


async def _with_cluster(
    client: Client, workdir: Path, options: DemoOptions, console: Console,
    kubectl: Callable[..., Any], stop: asyncio.Event, kept: asyncio.Event, kubectl_bin: str,
    config: Path,
) -> int:
    node_settings = LocalNodeSettings(runners=local_runners(), resolve_env=RESOLVE_ENV)
    # the demo publishes its target as a selector-less Service on the local node's pod range
    settings = OperatorSettings(allowed_endpoint_cidrs=(node_settings.pod_cidr,))
    node = LocalNode(client, node_settings)
    await node.start()
    console.print(f"local node {node.name} registered; it runs {settings.image} pods as "
                  "processes")
    try:
        async with demo_service(client, node, workdir, options) as ca_file, \
                local_webhooks(client) as webhook_server:
            console.print(f"demo service {SERVICE} (HTTPS, ~{options.latency_ms:g} ms latency) "
                          f"and the LoadTest webhooks at {webhook_server.url} are up")
            console.print("\n# the LoadTest CRD is installed (the seed's, generated from "
                          "kuar_loadtest.api with status, printer columns and v2)")
            await kubectl("get", "loadtests")
            operator = build_manager(client, OperatorOptions(
                settings=dataclasses.replace(settings, ca_file=str(ca_file)), handle_signals=False,
                health=None,
            ))
            running = asyncio.create_task(operator.run())
            try:
                lt = seed_object("my-loadtest.yaml")
                if options.duration:
                    lt["spec"]["duration"] = options.duration
                console.print("\n# creating the seed's my-loadtest "
                              f"({lt['spec']['requestsPerSecond']} req/s at {SERVICE})")
                await apply_manifests(client, parse_manifests(yaml.safe_dump(lt)),
                                      namespace=NAMESPACE, field_manager="kuar-demo")
                await kubectl("get", "loadtests")
                duration = parse_duration(lt["spec"].get("duration") or "60s")
                final = await _follow(client, lt["metadata"]["name"], duration, console)
                await kubectl("get", "loadtests")
                finished, result = await fetch_report_data(client, "my-loadtest", NAMESPACE)
                print_report(finished, result, console)
                report = write_html(options.report_dir / "loadtest-my-loadtest.html",
                                    finished.encode(), result)
                console.print(f"report: {report.resolve()}")
                phase = final.status.phase if final.status else None
                if options.keep:
                    console.print(f"\nkubeconfig: {config}\ntry: {kubectl_bin} --kubeconfig "
                                  f"{config} get lt\npress Ctrl-C to stop")
                    kept.set()
                    await stop.wait()
                return 0 if phase == "Succeeded" else 1
            finally:
                operator.stop()
                with contextlib.suppress(Exception):
                    await running
    finally:
        await node.stop()
