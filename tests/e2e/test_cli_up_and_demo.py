"""`kuar up` and `kuar demo` as a user runs them, in a subprocess."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import yaml

from kuar.testing import eventually, find_assets


def test_kuar_up_serves_until_sigterm_and_stops_cleanly(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "admin.kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kuar.cli", "up", "--kubeconfig", str(kubeconfig),
         "--with-controller-manager", "--with-scheduler"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        eventually(lambda: kubeconfig.exists(), timeout=60, interval=0.2)
        assets = find_assets()
        assert assets is not None
        kubectl = str(assets.path("kubectl"))
        out = eventually(
            lambda: subprocess.run(
                [kubectl, f"--kubeconfig={kubeconfig}", "get", "namespaces"],
                capture_output=True, text=True, check=True, timeout=30,
            ).stdout,
            timeout=30,
        )
        assert "kube-system" in out
        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        port = urllib.parse.urlsplit(server).port
        assert port is not None
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert f"control plane ready at {server}" in stdout
    assert re.search(r"try: \S+kubectl --kubeconfig \S+ get namespaces", stdout)
    assert "control plane stopped" in stderr
    # Nothing listens on the API server's port any more.
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_kuar_demo_shows_the_seed_transcript() -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "kuar.cli", "demo"], capture_output=True, text=True, timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert 'error: the server doesn\'t have a resource type "loadtests"' in out
    assert "No resources found in default namespace." in out
    assert re.search(r"^my-loadtest\s+\d+s$", out, re.MULTILINE)
    assert out.index("doesn't have a resource type") < out.index("No resources found")
    assert out.rstrip().endswith("control plane stopped")
    assert time.monotonic() - started < 180
