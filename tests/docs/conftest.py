"""The documentation site, built once per session with warnings as errors (as ``make docs``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "build" / "docs"
SCREENSHOTS = ROOT / "build" / "screenshots"


@pytest.fixture(scope="session")
def docs_site() -> Path:
    """``build/docs``, freshly built: broken links, missing references and undocumented public
    names fail the build (``-W -n``), and so this fixture."""
    started = time.monotonic()
    shutil.rmtree(SITE, ignore_errors=True)
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-E", "-W", "-n", "--keep-going", "-q", "-b", "html",
         str(ROOT / "docs"), str(SITE)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert build.returncode == 0, f"docs build failed:\n{build.stderr[-6000:]}"
    print(f"docs built in {time.monotonic() - started:.1f} s: "
          f"{len(list(SITE.rglob('*.html')))} HTML pages")
    return SITE
