"""Runs examples/webhook_processes against the real API server: N processes, one port.

The API server calls the webhook; every worker process serves some of the calls (the kernel
spreads the API server's connections over them); after one worker is killed the others keep
answering and the parent starts a new one.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import uuid
from pathlib import Path

import pytest

from kuar.client import Client, NotFound
from tests.examples.running import example

pytestmark = pytest.mark.controlplane

CONFIGS = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
SERVED_BY = "examples.kuar.dev/served-by"
CONCURRENT = 16
"""Creates in flight at once: the API server opens about as many connections to the webhook
(HTTP/1.1, one request per connection at a time), so with 2 processes the chance that every
connection lands on the same one is 2 ** -15."""


async def create_many(client: Client, namespace: str) -> list[str]:
    """``CONCURRENT`` ConfigMaps created at once; the pid label of each (all must succeed)."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"

    async def one() -> str:
        created = await client.request("POST", path, body={
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"cm-{uuid.uuid4().hex[:10]}"}, "data": {"k": "v"}})
        return str(created["metadata"]["labels"][SERVED_BY])
    return list(await asyncio.gather(*(one() for _ in range(CONCURRENT))))


async def test_every_process_serves_and_killing_one_keeps_the_others_serving(
    kubeconfig: Path, namespace: str, kube_client: Client, tmp_path: Path
) -> None:
    async with example("webhook_processes", kubeconfig, namespace,
                       tmp_path / "example.log", timeout=60) as run:
        found = re.search(r"with 2 processes \(pids (\d+), (\d+)\)", run.log)
        assert found, run.log
        pids = {found[1], found[2]}
        await asyncio.sleep(0.5)  # the API server's informer picks up the configuration

        served: set[str] = set()
        for _ in range(5):
            served.update(await create_many(kube_client, namespace))
            if served == pids:
                break
        assert served == pids, f"served by {served}, workers {pids}"

        killed, survivor = sorted(pids)
        os.kill(int(killed), signal.SIGKILL)
        await asyncio.sleep(0.5)  # the API server sees the dead connections close
        after = await create_many(kube_client, namespace)  # any failure raises
        assert killed not in after
        assert survivor in after

        async with asyncio.timeout(30):
            while f"worker {killed} exited" not in run.log:
                await asyncio.sleep(0.1)
        restarted = re.search(rf"worker {killed} exited with code -9; restarted as (\d+)",
                              run.log)
        assert restarted, run.log
        assert set(await create_many(kube_client, namespace)) <= {survivor, restarted[1]}
    assert run.exit_code == 0, run.log
    assert "stopped" in run.log
    with pytest.raises(NotFound):
        await kube_client.request("GET", f"{CONFIGS}/served-by-{namespace}")
