"""The start barrier against the real API server: a worker waits for its run's startAt.

``kuar-loadgen --start-from-run`` runs as a process with a real service-account token (from
the TokenRequest API) of the runners' ServiceAccount, bound to the Role the operator creates
(:func:`kuar_loadtest.desired.runner_identity`), and the cluster CA from ``kube-root-ca.crt``,
as in a pod. It must send nothing before the controller's time, start on it, and give up
with a readable error when its identity may not read the run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kuar.client import Api, Client
from kuar.testing import eventually_async
from kuar_loadgen import LoadResult
from kuar_loadtest.api.run import LoadTestRun
from kuar_loadtest.desired import runner_identity
from kuar_loadtest.local import install_crd, loadtestrun_crd
from kuar_loadtest.settings import OperatorSettings
from tests.integration.loadgen.server import serve

pytestmark = [pytest.mark.controlplane, pytest.mark.timeout(120)]

RUN = {"apiVersion": "beta.kuar.com/v1", "kind": "LoadTestRun",
       "metadata": {"name": "r-run-1"},
       "spec": {"loadTest": "r", "trigger": "Spec", "generation": 1, "loadTestSpec": {}}}


async def _credentials(client: Client, namespace: str, account: str, folder: Path
                       ) -> tuple[Path, Path]:
    """A token of ``account`` and the cluster CA, written as a pod's projected volume has them."""
    issued = await client.request(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 600}})
    token = folder / "token"
    token.write_text(issued["status"]["token"])

    async def published() -> str:
        cm = await client.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/"
                                         "kube-root-ca.crt")
        data: str = cm["data"]["ca.crt"]
        return data

    ca = folder / "ca.crt"
    ca.write_text(await eventually_async(published, timeout=30))
    return token, ca


def _worker(client: Client, namespace: str, url: str, token: Path, ca: Path,
            timeout: float) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUAR_LOADGEN")}
    return subprocess.Popen(
        [sys.executable, "-m", "kuar_loadgen", "--url", url, "--rps", "50", "--duration", "1",
         "--processes", "1", "--json", "--no-progress",
         "--start-from-run", f"{namespace}/r-run-1", "--api-server", client.config.server,
         "--api-token-file", str(token), "--api-ca-file", str(ca),
         "--start-timeout", str(timeout)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


async def _setup(client: Client, namespace: str, account: str, *, bound: bool) -> None:
    await install_crd(client, loadtestrun_crd())
    for obj in runner_identity(namespace, account, OperatorSettings()):
        if bound or obj.kind == "ServiceAccount":
            await Api(client, type(obj), namespace=namespace).create(obj)
    await client.request("POST", f"/apis/beta.kuar.com/v1/namespaces/{namespace}/loadtestruns",
                         body=RUN)


async def test_a_worker_sends_nothing_before_the_written_start_and_starts_on_it(
    kube_client: Client, namespace: str, tmp_path: Path,
) -> None:
    await _setup(kube_client, namespace, "kuar-loadgen", bound=True)
    token, ca = await _credentials(kube_client, namespace, "kuar-loadgen", tmp_path)
    with serve() as srv:
        worker = _worker(kube_client, namespace, f"http://127.0.0.1:{srv.port}/", token, ca, 60)
        try:
            await asyncio.sleep(3)  # set up and watching; no time yet
            assert worker.poll() is None and srv.total == 0
            at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
            at = at.replace(microsecond=at.microsecond // 1000 * 1000)
            await Api(kube_client, LoadTestRun, namespace=namespace).patch_status(
                "r-run-1", {"status": {"startAt": at.isoformat(timespec="milliseconds")
                                       .replace("+00:00", "Z")}})
            out, err = worker.communicate(timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
        assert worker.returncode == 0, err
        assert srv.total == 50
    result = LoadResult.from_json(out.strip().splitlines()[-1])
    late = result.first_sent_at - at.timestamp()
    print(f"first request {late * 1000:.1f} ms after startAt")  # the figure for the record
    assert 0 <= late < 0.05, late  # its first request went out on the shared time
    assert "waiting for the start time of LoadTestRun" in err
    assert token.read_text() not in out + err


async def test_a_worker_that_may_not_read_its_run_gives_up_with_a_readable_error(
    kube_client: Client, namespace: str, tmp_path: Path,
) -> None:
    await _setup(kube_client, namespace, "unbound", bound=False)
    token, ca = await _credentials(kube_client, namespace, "unbound", tmp_path)
    with serve() as srv:
        worker = _worker(kube_client, namespace, f"http://127.0.0.1:{srv.port}/", token, ca, 4)
        out, err = worker.communicate(timeout=60)
        assert srv.total == 0
    assert worker.returncode == 3, err
    [line] = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert f"no start time for LoadTestRun {namespace}/r-run-1 within 4s" in line
    assert "403" in line and "forbidden" in line.lower(), line
    assert "Traceback" not in err and token.read_text() not in out + err
