"""The manager on the real API server: ordered start, probes, metrics, failure and stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from kuar.client import Client, ResourceInfo, load_config
from kuar.manager import HealthSettings, Manager, ManagerSettings
from kuar.runtime import WatchConfig
from kuar.testing import eventually_async

CONFIGMAPS = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)


class Recorder:
    def __init__(self, log: list[str], name: str, *, leader: bool, fail: bool = False) -> None:
        self.log, self.name, self.fail = log, name, fail
        self.needs_leader_election = leader

    async def run(self) -> None:
        self.log.append(f"start {self.name}")
        try:
            if self.fail:
                raise RuntimeError(f"{self.name} broke")
            await asyncio.Event().wait()
        finally:
            self.log.append(f"stop {self.name}")


async def _get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(
        f"http://127.0.0.1:{port}{path}"
    ) as resp:
        return resp.status, await resp.text()


async def test_ordered_start_probes_metrics_and_graceful_stop(
    kubeconfig: Path, namespace: str
) -> None:
    client = Client(await load_config(kubeconfig))
    manager = Manager(client, ManagerSettings(health=HealthSettings(port=0),
                                              handle_signals=False))
    events: list[str] = []
    manager.add(Recorder(events, "controller", leader=True))
    manager.add(Recorder(events, "webhook", leader=False))
    informer = manager.cache.informer(CONFIGMAPS, WatchConfig(namespace=namespace))
    running = asyncio.create_task(manager.run())
    try:
        await asyncio.wait_for(manager.leading.wait(), 30)
        assert events == ["start webhook", "start controller"]
        assert informer.store.synced  # caches synced before leader-only work started
        assert manager.health is not None
        port = manager.health.port
        assert await _get(port, "/healthz") == (200, "ok")
        status, body = await _get(port, "/readyz?verbose")
        assert status == 200 and "[+]informers ok" in body
        status, metrics = await _get(port, "/metrics")
        assert status == 200 and "kuar_watch_events_total" in metrics

        manager.add_ready_check("broken", lambda: False)
        status, body = await _get(port, "/readyz")
        assert status == 500 and "[-]broken failed" in body
    finally:
        manager.stop()
        await asyncio.wait_for(running, 30)
        await client.close()
    assert events[-2:] == ["stop controller", "stop webhook"]


async def test_a_failing_runnable_stops_the_manager_with_its_error(kubeconfig: Path) -> None:
    client = Client(await load_config(kubeconfig))
    manager = Manager(client, ManagerSettings(health=None, handle_signals=False))
    events: list[str] = []
    manager.add(Recorder(events, "other", leader=False))
    manager.add(Recorder(events, "broken", leader=True, fail=True))
    try:
        with pytest.raises(RuntimeError, match="broken broke"):
            await asyncio.wait_for(manager.run(), 30)
    finally:
        await client.close()
    assert "stop other" in events


async def test_probe_server_answers_while_caches_sync(kubeconfig: Path) -> None:
    client = Client(await load_config(kubeconfig))
    manager = Manager(client, ManagerSettings(health=HealthSettings(port=0),
                                              handle_signals=False))
    running = asyncio.create_task(manager.run())
    try:
        async def up() -> None:
            assert manager.health is not None and manager.health.port
            assert (await _get(manager.health.port, "/healthz"))[0] == 200

        await eventually_async(up, timeout=10)
    finally:
        manager.stop()
        await asyncio.wait_for(running, 30)
        await client.close()
