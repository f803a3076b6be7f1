"""The demo on the real node: the project's images as containers, installed with kubectl -k.

Place in the pipeline: ``kuar demo --node real`` (:mod:`kuar_demo.cli`) calls
:func:`run_real_demo`. Where :func:`kuar_demo.run.run_demo` runs the operator in this process
and pods as host processes, this one starts the control plane and a
:class:`~kuar.testing.realnode.RealNode`, then does what a user does on a cluster:
``kubectl apply -k`` of the install tree pinned to the image digests (operator Deployment,
webhooks behind their Service), ``kubectl apply -k`` of the demo's target (my-service, an
https Deployment), and ``kubectl apply -f`` of the seed's my-loadtest.

Guarantees: interrupted (Ctrl-C) at any point, it stops the node (every container, the
bridge, the iptables rules) and the control plane, also while they are still starting.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console

from kuar.client import Client, load_config
from kuar.testing import ControlPlane
from kuar.testing.realnode import RealNode, RealNodeSettings, image_archives, plane_settings
from kuar_demo.install import write_operator_overlay, write_target_overlay
from kuar_demo.run import NAMESPACE, SERVICE, DemoOptions, _follow, seed_object
from kuar_loadtest.cli import fetch_report_data, print_report
from kuar_loadtest.desired import parse_duration
from kuar_loadtest.report import write_html

TARGET_NAMES = [SERVICE, f"{SERVICE}.{NAMESPACE}", f"{SERVICE}.{NAMESPACE}.svc",
                f"{SERVICE}.{NAMESPACE}.svc.cluster.local"]


async def _start(plane: ControlPlane, node: RealNode) -> None:
    """Start both in a thread; if cancelled meanwhile, let the start end, then undo it."""
    def both() -> None:
        plane.start()
        node.start()

    starting = asyncio.ensure_future(asyncio.to_thread(both))
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await starting
        await asyncio.to_thread(node.stop)
        await asyncio.to_thread(plane.stop)
        raise


async def run_real_demo(options: DemoOptions, image_dir: Path, console: Console,
                        stop: asyncio.Event, kept: asyncio.Event | None = None) -> int:
    """Run the demo on a real node; returns the exit code (0 when my-loadtest Succeeded)."""
    if not (image_dir / "images.json").exists():
        console.print(f"error: no images.json in {image_dir}: run `make images` first")
        return 1
    plane = ControlPlane(plane_settings())
    node = RealNode(plane, RealNodeSettings(images=image_archives(image_dir)))
    console.print("starting the control plane and a real node (containerd, kubelet, "
                  "kube-proxy, CoreDNS) ...")
    await _start(plane, node)
    try:
        config = plane.write_kubeconfig(options.kubeconfig) if options.kubeconfig \
            else plane.kubeconfig
        console.print(f"node {node.settings.name} Ready in {node.times.total:.1f} s; "
                      f"images imported: {', '.join(name for _, name in node.settings.images)}")

        async def kubectl(*args: str, stdin: str | None = None, show: bool = True) -> int:
            if show:
                console.print(f"[bold]$ kubectl {' '.join(args)}[/bold]")
            proc = await asyncio.to_thread(
                subprocess.run, [*plane.kubectl(config), *args], input=stdin,
                capture_output=True, text=True, check=False, timeout=300)
            if show:
                console.print((proc.stdout + proc.stderr).rstrip(), markup=False,
                              highlight=False)
            return proc.returncode

        with tempfile.TemporaryDirectory(prefix="kuar-demo-real-") as tmp:
            work = Path(tmp)
            install = write_operator_overlay(work / "install", image_dir)
            started = time.monotonic()
            await kubectl("apply", "-k", str(install))
            if await kubectl("-n", "kuar-system", "rollout", "status",
                             "deployment/kuar-loadtest-operator", "--timeout=240s") != 0:
                await kubectl("describe", "pods", "-n", "kuar-system")
                return 1
            console.print(f"operator ready {time.monotonic() - started:.1f} s after "
                          "kubectl apply -k")
            cert, key = node.issue_serving(TARGET_NAMES)
            target = write_target_overlay(work / "target", image_dir, cert, key)
            await kubectl("apply", "-k", str(target))
            if await kubectl("rollout", "status", "deployment/my-service",
                             "--timeout=180s") != 0:
                await kubectl("describe", "pods", "-n", NAMESPACE, "-l",
                              "app.kubernetes.io/name=my-service")
                await kubectl("logs", "-n", NAMESPACE, "deployment/my-service", "--tail=20")
                return 1
            lt = seed_object("my-loadtest.yaml")
            if options.duration:
                lt["spec"]["duration"] = options.duration
            await kubectl("apply", "-n", NAMESPACE, "-f", "-", stdin=yaml.safe_dump(lt))
            client = Client(await load_config(config))
            try:
                duration = parse_duration(lt["spec"].get("duration") or "60s")
                final = await _follow(client, lt["metadata"]["name"], duration, console)
                await kubectl("get", "loadtests", "-n", NAMESPACE)
                await kubectl("get", "pods", "-A", "-o", "wide")
                finished, result = await fetch_report_data(client, "my-loadtest", NAMESPACE)
                print_report(finished, result, console)
                report = write_html(options.report_dir / "loadtest-my-loadtest.html",
                                    finished.encode(), result)
                console.print(f"report: {report.resolve()}")
            finally:
                await client.close()
            phase = final.status.phase if final.status else None
            if options.keep:
                console.print(f"\nkubeconfig: {config}\ntry: kubectl --kubeconfig {config} "
                              "get pods -A\npress Ctrl-C to stop")
                if kept is not None:
                    kept.set()
                await stop.wait()
            return 0 if phase == "Succeeded" else 1
    finally:
        await asyncio.to_thread(node.stop)
        await asyncio.to_thread(plane.stop)
        console.print("node and control plane stopped")
