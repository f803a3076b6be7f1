"""The sdists and wheels of kuar and kuar-loadgen install offline in a fresh venv."""

from __future__ import annotations

import email.parser
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.integration.image.conftest import Built


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.BytesParser().parsebytes(archive.read(name))


def _run(*cmd: str | Path, timeout: float = 600) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{cmd}: {proc.stderr[-2000:]}"
    return proc.stdout


def test_distributions_have_complete_metadata(built_images: Built) -> None:
    dist = built_images.dist
    for name in ("kuar-0.1.0", "kuar_loadgen-0.1.0"):
        assert (dist / f"{name}.tar.gz").exists()  # the sdist the wheel was built from
        meta = _metadata(dist / f"{name}-py3-none-any.whl")
        assert meta["License-Expression"] == "Apache-2.0"
        assert meta["Requires-Python"] == ">=3.11"
        assert any(c.startswith("Programming Language :: Python :: 3.11")
                   for c in meta.get_all("Classifier") or [])
        assert any(u.startswith("Source, ") for u in meta.get_all("Project-URL") or [])
    kuar = _metadata(dist / "kuar-0.1.0-py3-none-any.whl")
    assert "kuar-loadgen==0.1.0" in (kuar.get_all("Requires-Dist") or [])
    loadgen = _metadata(dist / "kuar_loadgen-0.1.0-py3-none-any.whl")
    requires = " ".join(loadgen.get_all("Requires-Dist") or [])
    for heavy in ("matplotlib", "pydantic", "kubernetes", "aiohttp"):
        assert heavy not in requires


def test_fresh_venv_installs_the_wheels_offline(built_images: Built, tmp_path: Path) -> None:
    dist = built_images.dist
    wheelhouse = tmp_path / "wheelhouse"
    # online once: the dependencies (pip's cache makes this quick after the first time)
    _run(sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
         "--dest", wheelhouse, "--find-links", dist, "kuar==0.1.0")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    # offline: nothing but the built files and the wheelhouse
    _run(venv / "bin/python", "-m", "pip", "install", "--disable-pip-version-check", "-q",
         "--no-index", "--find-links", dist, "--find-links", wheelhouse, "kuar==0.1.0")
    assert _run(venv / "bin/kuar", "--version").strip() == "kuar, version 0.1.0"
    assert "Open-loop HTTP load" in _run(venv / "bin/kuar-loadgen", "--help")
    installed = _run(venv / "bin/python", "-m", "pip", "list", "--format=freeze")
    assert "kuar-loadgen==0.1.0" in installed.splitlines()
