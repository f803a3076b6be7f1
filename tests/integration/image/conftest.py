"""The project's images, built once per test session with ``kuar image build``, and podman.

The build uses the shared cache (~/.cache/kuar/image: Debian root file system, downloaded
wheels, dependency layers), so only the first session on a machine pays for mmdebstrap and
the downloads. ``make test`` installs the Debian tools first (``make image-tools``).

Why podman with runc: crun (podman's default) refuses this machine's hybrid cgroups, and the
default rlimits need CAP_SYS_RESOURCE (../shared/design/containers.md); runc with explicit
``--ulimit`` values works. Each test module gets its own podman storage (vfs driver, so no
mount outlives it) in a temporary folder, removed at the end with every container in it,
also after a failure.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
KUAR = Path(sys.executable).parent / "kuar"


@dataclass
class Built:
    output: Path
    dist: Path
    record: dict[str, Any]
    seconds: float

    def image(self, key: str) -> dict[str, Any]:
        image: dict[str, Any] = self.record["images"][key]
        return image

    def archive(self, key: str) -> Path:
        return self.output / self.image(key)["archive"]


def build(output: Path, dist: Path, *extra: str, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KUAR), "image", "build", "--project", str(ROOT),
                           "--output-dir", str(output), "--dist", str(dist), *extra],
                          capture_output=True, text=True, env=env, timeout=1200)


@pytest.fixture(scope="session")
def built_images(tmp_path_factory: pytest.TempPathFactory) -> Built:
    missing = [tool for tool in ("mmdebstrap", "umoci") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run `make image-tools` (apt-get install)")
    base = tmp_path_factory.mktemp("images")
    import time

    started = time.monotonic()
    proc = build(base / "out", base / "dist")
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    record = json.loads((base / "out" / "images.json").read_text())
    return Built(output=base / "out", dist=base / "dist", record=record, seconds=seconds)


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

    def start(self, name: str, image: str, *args: str, opts: tuple[str, ...] = ()) -> None:
        """``podman run -d``: the container runs in the background until :meth:`stop`."""
        proc = self("run", "-d", "--name", name, "--runtime", RUNC, "--network", "host",
                    "--read-only", *LIMITS, *opts, image, *args)
        assert proc.returncode == 0, proc.stderr

    def state(self, name: str) -> dict[str, Any]:
        """``.State`` of ``podman inspect``: Status, Running, ExitCode, ..."""
        proc = self("inspect", "--format", "{{json .State}}", name)
        assert proc.returncode == 0, proc.stderr
        state: dict[str, Any] = json.loads(proc.stdout)
        return state

    def logs(self, name: str) -> str:
        """What the container wrote, stdout then stderr."""
        proc = self("logs", name)
        return proc.stdout + proc.stderr


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
