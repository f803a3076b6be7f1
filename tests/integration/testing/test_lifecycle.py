"""Starting and stopping the control plane: clean stop, fast readable failures, restarts."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from kuar.client import Client, load_config
from kuar.testing import ControlPlane, ControlPlaneSettings, StartError, free_port, install


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_leaves_no_process_and_no_folder() -> None:
    plane = ControlPlane(ControlPlaneSettings(with_controller_manager=True, with_scheduler=True))
    plane.start()
    pids = [p.pid for p in plane.processes.values()]
    root = plane.root
    assert root is not None and root.exists()
    assert len(pids) == 4 and all(pid is not None and _alive(pid) for pid in pids)
    plane.stop()
    assert not root.exists()
    assert not any(_alive(pid) for pid in pids if pid is not None)
    plane.stop()  # idempotent


def test_taken_port_fails_fast_with_a_readable_reason() -> None:
    port = free_port()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        plane = ControlPlane(ControlPlaneSettings(apiserver_port=port))
        started = time.monotonic()
        with pytest.raises(StartError, match=f"port {port} on 127.0.0.1 is already taken"):
            plane.start()
        assert time.monotonic() - started < 30
    assert plane.root is None and plane.processes == {}


def test_missing_binary_fails_with_the_install_hint(tmp_path: Path) -> None:
    (tmp_path / "etcd").write_text("#!/bin/sh\n")
    (tmp_path / "etcd").chmod(0o755)
    plane = ControlPlane(ControlPlaneSettings(assets=tmp_path))
    with pytest.raises(StartError, match=r"kube-apiserver not found .*kuar controlplane install"):
        plane.start()


def test_a_process_that_exits_shows_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "kube-apiserver"
    broken.write_text("#!/bin/sh\necho 'boom: cannot start' >&2\nexit 3\n")
    broken.chmod(0o755)
    (tmp_path / "etcd").symlink_to(install().path("etcd"))
    plane = ControlPlane(ControlPlaneSettings(assets=tmp_path, start_timeout=20))
    expected = r"(?s)kube-apiserver did not start: exited with code 3.*boom"
    with pytest.raises(StartError, match=expected):
        plane.start()
    assert plane.root is None


def test_a_process_that_never_gets_ready_times_out(tmp_path: Path) -> None:
    hang = tmp_path / "kube-apiserver"
    hang.write_text("#!/bin/sh\nexec sleep 60\n")
    hang.chmod(0o755)
    (tmp_path / "etcd").symlink_to(install().path("etcd"))
    plane = ControlPlane(ControlPlaneSettings(assets=tmp_path, start_timeout=2))
    started = time.monotonic()
    with pytest.raises(StartError, match="kube-apiserver not ready in 2 s"):
        plane.start()
    assert time.monotonic() - started < 15
    assert plane.processes == {}


async def test_restart_apiserver_keeps_etcd_and_objects() -> None:
    with ControlPlane() as plane:
        async with Client(await load_config(plane.kubeconfig)) as client:
            path = "/api/v1/namespaces/default/configmaps"
            await client.request("POST", path, body={"metadata": {"name": "kept"}})
            old_pid = plane.processes["kube-apiserver"].pid
            plane.restart_apiserver(kill=True)
            assert plane.processes["kube-apiserver"].pid != old_pid
            got = await client.request("GET", f"{path}/kept")
            assert got["metadata"]["name"] == "kept"
