"""The images on a real container runtime: Debian's podman with runc, host network.

Why podman with runc: crun (podman's default) refuses this machine's hybrid cgroups, and the
default rlimits need CAP_SYS_RESOURCE (../shared/design/containers.md); runc with explicit
``--ulimit`` values works. Each test session gets its own podman storage (vfs driver, so no
mount outlives it) in a temporary folder, removed at the end with every container in it.
Traffic goes only to 127.0.0.1 (the container shares the host's network).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kuar.base.pki import CertificateAuthority
from kuar.testing.process import Process
from tests.integration.image.conftest import Built

RUNC = shutil.which("runc") or "/usr/sbin/runc"
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]


class Podman:
    def __init__(self, root: Path) -> None:
        self.base = ["podman", "--root", str(root / "storage"), "--runroot", str(root / "run"),
                     "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file", "--tmpdir", str(root / "tmp")]

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.base, *args], capture_output=True, text=True,
                              timeout=timeout)

    def load(self, archive: Path) -> str:
        proc = self("load", "-q", "-i", str(archive))
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip().rsplit(" ", 1)[-1]  # "Loaded image: NAME"

    def run(self, image: str, *args: str, opts: tuple[str, ...] = (), timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
        return self("run", "--rm", "--runtime", RUNC, "--network", "host", "--read-only",
                    *LIMITS, *opts, image, *args, timeout=timeout)


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    if shutil.which("podman") is None or not Path(RUNC).exists():
        pytest.fail("podman or runc missing: run `make image-tools` (apt-get install)")
    root = tmp_path_factory.mktemp("podman")
    (root / "tmp").mkdir()
    runtime = Podman(root)
    try:
        yield runtime
    finally:
        runtime("rm", "--all", "--force", "--time", "1")
        runtime("rmi", "--all", "--force")
        shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def demo_service(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """kuar's HTTPS demo service on 127.0.0.1; yields (port, CA file)."""
    ca = CertificateAuthority.create("kuar-image-test-ca")
    pair = ca.issue_serving(["localhost"], ["127.0.0.1"])
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    (tmp_path / "tls.crt").write_bytes(pair.cert_pem)
    (tmp_path / "tls.key").write_bytes(pair.key_pem)
    port = _free_port()
    process = Process("demo-service", [sys.executable, "-m", "kuar_demo.service", "--port",
                                       str(port), "--latency-ms", "1", "--cert",
                                       str(tmp_path / "tls.crt"), "--key",
                                       str(tmp_path / "tls.key")], tmp_path)
    process.start()
    try:
        deadline = time.monotonic() + 20
        while not process.log_contains("listening on"):
            assert process.exit_code() is None, process.log_tail()
            assert time.monotonic() < deadline, "demo service did not start"
            time.sleep(0.05)
        yield port, tmp_path / "ca.crt"
    finally:
        process.stop(5.0)


def test_load_worker_image_holds_1000_rps_against_the_https_demo_service(
        built_images: Built, podman: Podman, demo_service: tuple[int, Path]) -> None:
    port, ca = demo_service
    image = podman.load(built_images.archive("loadgen"))
    assert image == "kuar.dev/loadgen:0.1.0"
    proc = podman.run(image, "--url", f"https://127.0.0.1:{port}/", "--rps", "1000",
                      "--duration", "5", "--ca-file", "/etc/kuar/ca.crt", "--json",
                      "--no-progress",
                      opts=("--memory", "512m", "-v", f"{ca}:/etc/kuar/ca.crt:ro,Z"))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps({k: result[k] for k in ("requests", "responses", "errors", "target_rps",
                                             "achieved_rps", "latency_ms")}))
    assert result["requests"] == 5000
    assert result["errors"] == 0, result["error_kinds"]
    assert result["responses"] == 5000
    assert result["status_codes"] == {"200": 5000}
    assert result["achieved_rps"] >= 950


def test_operator_image_starts_its_command_on_a_read_only_root(
        built_images: Built, podman: Podman) -> None:
    image = podman.load(built_images.archive("operator"))
    assert image == "kuar.dev/operator:0.1.0"
    version = podman.run(image, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == "kuar, version 0.1.0"
    # the default command, up to its flags: every import of `kuar loadtest run` loads
    # (matplotlib too) as the image's uid 65532 with nothing writable but /tmp
    help_ = podman.run(image, "loadtest", "run", "--help")
    assert help_.returncode == 0, help_.stderr
    assert "--kubeconfig" in help_.stdout
