"""`kuar up` and `kuar demo` as a user runs them, in a subprocess."""

from __future__ import annotations

import os
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
                [kubectl, f"--kubeconfig={kubeconfig}", f"--cache-dir={tmp_path / 'cache'}",
                 "get", "namespaces"],
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


def test_kuar_demo_runs_the_seed_loadtest_end_to_end_and_keeps_serving(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "demo.kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kuar.cli", "demo", "--duration", "5s", "--keep",
         "--kubeconfig", str(kubeconfig), "--output-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 300
        for line in proc.stdout:
            lines.append(line)
            if "press Ctrl-C to stop" in line or time.monotonic() > deadline:
                break
        out = "".join(lines)
        assert "press Ctrl-C to stop" in out, out
        # the seed's transcript, in order
        first = out.index('error: the server doesn\'t have a resource type "loadtests"')
        second = out.index("No resources found in default namespace.")
        assert first < second
        rows = re.findall(r"^my-loadtest\s+my-service\s+1000\s+(\w+)\s+(.*)$", out,
                          re.MULTILINE)
        assert rows and rows[-1][0] == "Succeeded", out
        achieved = float(rows[-1][1].split()[0])
        assert abs(achieved - 1000) <= 20, achieved  # within 2 %
        report = tmp_path / "loadtest-my-loadtest.html"
        assert report.exists() and "data:image/png;base64," in report.read_text()
        assert f"report: {report}" in out

        # --keep: the cluster still serves, through the kubeconfig it wrote
        assets = find_assets()
        assert assets is not None
        listed = subprocess.run(
            [str(assets.path("kubectl")), f"--kubeconfig={kubeconfig}",
             f"--cache-dir={tmp_path / 'cache'}", "get", "lt"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
        assert "my-loadtest" in listed and "Succeeded" in listed
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert rest.rstrip().endswith("control plane stopped")
