"""Issue 14's fault suite on the local cluster: the operator SIGKILLed mid-run and restarted,
and the API server restarted mid-run. Either way the run completes once (one Job) and its
status is complete or says what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.e2e.conftest import (
    Cluster,
    _free_port,
    create,
    loadtest,
    operator,
    target_service,
    wait_phase,
)


@contextlib.contextmanager
def operator_process(cluster: Cluster, ns: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``kuar loadtest run`` as a process of its own (so it can be SIGKILLed), limited to ns."""
    argv = [sys.executable, "-m", "kuar.cli", "loadtest", "run",
            "--kubeconfig", str(cluster.plane.kubeconfig), "--namespace", ns,
            "--health-bind", f"127.0.0.1:{_free_port()}",
            "--metrics-bind", f"127.0.0.1:{_free_port()}", "--log-format", "json",
            "--allow-endpoint-cidr", cluster.node.settings.pod_cidr]
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()  # our own process, by its pid
        proc.wait(timeout=30)


async def _jobs(cluster: Cluster, ns: str, name: str) -> list[str]:
    listed = await cluster.client.request(
        "GET", f"/apis/batch/v1/namespaces/{ns}/jobs",
        params={"labelSelector": f"kuar.dev/loadtest={name}"})
    return [j["metadata"]["name"] for j in listed["items"]]


def _complete(lt: dict[str, object], requests: int) -> None:
    status = lt["status"]
    assert isinstance(status, dict)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["ResultsComplete"]["status"] == "True", status
    assert status["results"]["requests"] == requests, status
    assert status["results"]["errors"] == 0, status


async def test_operator_sigkilled_mid_run_and_restarted_completes_the_run_once(
    cluster: Cluster, ns: str, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    async with target_service(cluster, ns):
        with operator_process(cluster, ns, log) as first:
            await create(cluster, ns, loadtest("survivor", requestsPerSecond=100, duration="6s"))
            await wait_phase(cluster, ns, "survivor", "Running", timeout=60)
            os.kill(first.pid, signal.SIGKILL)
            await asyncio.to_thread(first.wait, 30)
        assert first.returncode == -signal.SIGKILL
        with operator_process(cluster, ns, log):
            lt = await wait_phase(cluster, ns, "survivor", "Succeeded", "Failed", timeout=90)
    assert lt["status"]["phase"] == "Succeeded", lt["status"]
    assert await _jobs(cluster, ns, "survivor") == ["survivor-run-1"]  # one run, not two
    _complete(lt, 600)


async def test_api_server_restarted_mid_run_completes_the_run_once(
    cluster: Cluster, ns: str
) -> None:
    async with target_service(cluster, ns), operator(cluster, ns):
        await create(cluster, ns, loadtest("weathered", requestsPerSecond=100, duration="6s"))
        await wait_phase(cluster, ns, "weathered", "Running", timeout=60)
        await asyncio.to_thread(cluster.plane.restart_apiserver, kill=True, down_for=2.0)
        lt = await wait_phase(cluster, ns, "weathered", "Succeeded", "Failed", timeout=120)
    assert lt["status"]["phase"] == "Succeeded", lt["status"]
    assert await _jobs(cluster, ns, "weathered") == ["weathered-run-1"]
    _complete(lt, 600)
