"""kuar image build on bad input: one ``error:`` line naming what is missing, no image left."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kuar.image import default_cache
from tests.integration.image.conftest import KUAR, ROOT, Built, build


def _assert_one_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def _no_image(output: Path) -> None:
    left = sorted(p.name for p in output.iterdir()) if output.exists() else []
    assert left == [], left


def test_missing_debian_tool_is_named(built_images: Built, tmp_path: Path) -> None:
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    os.symlink(shutil.which("mmdebstrap") or "/usr/bin/mmdebstrap", bin_ / "mmdebstrap")
    env = dict(os.environ, PATH=str(bin_))  # no umoci
    proc = build(tmp_path / "out", built_images.dist, "--no-build", env=env)
    _assert_one_error(proc, "umoci", "apt-get install -y umoci")
    _no_image(tmp_path / "out")


def _cache_with_rootfs(tmp_path: Path) -> Path:
    """A cache holding the session's Debian root file systems (hard links) and nothing else."""
    cache = tmp_path / "cache"
    (cache / "rootfs").mkdir(parents=True)
    for path in (default_cache() / "rootfs").iterdir():
        if not path.name.startswith("."):
            os.link(path, cache / "rootfs" / path.name)
    return cache


def test_unreachable_package_index_is_named(built_images: Built, tmp_path: Path) -> None:
    cache = _cache_with_rootfs(tmp_path)
    index = "http://127.0.0.1:9/simple"  # nothing listens on the discard port
    proc = build(tmp_path / "out", built_images.dist, "--no-build", "--only", "loadgen",
                 "--cache", str(cache), "--index-url", index)
    _assert_one_error(proc, "package index", index)
    _no_image(tmp_path / "out")
    assert [p.name for p in (cache / "wheels").iterdir()] == []  # nothing half-cached


def test_unreachable_debian_mirror_is_named(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[tool.kuar.image]\nmirrors = ["http://127.0.0.1:9/debian"]\n'
        '[tool.kuar.image.images.x]\nname = "example.com/x"\ninstall = ["x"]\n'
        'entrypoint = ["x"]\n')
    proc = subprocess.run([str(KUAR), "image", "build", "--project", str(project),
                           "--no-build", "--dist", str(tmp_path / "dist"),
                           "--output-dir", str(tmp_path / "out"), "--cache",
                           str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=300)
    _assert_one_error(proc, "mmdebstrap", "Debian bookworm root file system", "127.0.0.1:9")
    _no_image(tmp_path / "out")
    assert [p.name for p in (tmp_path / "cache" / "rootfs").iterdir()] == []


@pytest.fixture
def tiny_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_is_named_and_leaves_no_image(built_images: Built, tiny_disk: Path) -> None:
    out = tiny_disk / "out"
    proc = build(out, built_images.dist, "--no-build", "--only", "loadgen")
    _assert_one_error(proc, "no space left on device")
    _no_image(out)


def test_project_without_images_is_named(tmp_path: Path) -> None:
    proc = subprocess.run([str(KUAR), "image", "build", "--project", str(ROOT / "loadgen"),
                           "--no-build", "--output-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)
    _assert_one_error(proc, "declares no images")
