"""The project's images, built once per test session with ``kuar image build``.

The build uses the shared cache (~/.cache/kuar/image: Debian root file system, downloaded
wheels, dependency layers), so only the first session on a machine pays for mmdebstrap and
the downloads. ``make test`` installs the Debian tools first (``make image-tools``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
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
