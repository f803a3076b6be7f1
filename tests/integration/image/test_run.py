"""The images on a real container runtime: Debian's podman with runc, host network.

podman's settings and storage are in conftest.py. Traffic goes only to 127.0.0.1 (the
container shares the host's network).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kuar.base.pki import CertificateAuthority
from kuar.testing.process import Process
from tests.integration.image.conftest import Built, Podman, free_port


@pytest.fixture
def demo_service(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """kuar's HTTPS demo service on 127.0.0.1; yields (port, CA file)."""
    ca = CertificateAuthority.create("kuar-image-test-ca")
    pair = ca.issue_serving(["localhost"], ["127.0.0.1"])
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    (tmp_path / "tls.crt").write_bytes(pair.cert_pem)
    (tmp_path / "tls.key").write_bytes(pair.key_pem)
    port = free_port()
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
