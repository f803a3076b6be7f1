"""Finding and building the control-plane binaries: cache keys, KUBEBUILDER_ASSETS, Go checks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kuar.testing import assets


def _fake_bins(folder: Path, names: tuple[str, ...]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)


def test_kubebuilder_assets_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_bins(tmp_path / "envtest", ("etcd", "kube-apiserver", "kubectl"))
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path / "envtest"))
    monkeypatch.setenv("KUAR_CACHE_DIR", str(tmp_path / "cache"))
    found = assets.install()  # nothing is built
    assert found.directory == tmp_path / "envtest"
    assert not (tmp_path / "cache").exists()


def test_incomplete_kubebuilder_assets_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_bins(tmp_path / "envtest", ("etcd",))
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path / "envtest"))
    monkeypatch.setenv("KUAR_CACHE_DIR", str(tmp_path / "cache"))
    assert assets.find_assets() is None


def test_cache_key_changes_with_go_sum(tmp_path: Path) -> None:
    mods = tmp_path / "mods"
    shutil.copytree(assets.modules_dir(), mods)
    before = assets.cache_key(mods)
    assert before.startswith(f"k8s-{assets.KUBERNETES_VERSION}-etcd-{assets.ETCD_VERSION}-")
    with (mods / "kube" / "go.sum").open("a") as f:
        f.write("example.invalid/x v1.0.0 h1:AAAA=\n")
    assert assets.cache_key(mods) != before


def test_cached_folder_is_reused_without_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("KUAR_CACHE_DIR", str(tmp_path))
    _fake_bins(tmp_path / "controlplane" / assets.cache_key(), assets.ALL_BINARIES)
    monkeypatch.setenv("PATH", str(tmp_path / "no-go-here"))
    assert assets.install().directory == tmp_path / "controlplane" / assets.cache_key()


def test_missing_go_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("KUAR_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "no-go-here"))
    with pytest.raises(assets.AssetsError, match=r"Go is not installed: .*Go >= 1\.26"):
        assets.install()
    leftovers = [p for p in (tmp_path / "controlplane").iterdir() if not p.name.startswith(".")]
    assert leftovers == []


def test_old_go_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_go = tmp_path / "bin" / "go"
    fake_go.parent.mkdir()
    fake_go.write_text("#!/bin/sh\necho go1.22.5\n")
    fake_go.chmod(0o755)
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("KUAR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", f"{fake_go.parent}{os.pathsep}/usr/bin:/bin")
    with pytest.raises(assets.AssetsError, match=r"Go go1\.22\.5 is too old"):
        assets.install()


def test_failed_build_names_the_step_and_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_go = tmp_path / "bin" / "go"
    fake_go.parent.mkdir()
    fake_go.write_text(
        '#!/bin/sh\ncase "$1" in\n  env) echo go1.26.8;;\n  list) echo a b c;;\n'
        '  build) echo "compile error: something broke"; exit 2;;\nesac\n'
    )
    fake_go.chmod(0o755)
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("KUAR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", f"{fake_go.parent}{os.pathsep}/usr/bin:/bin")
    with pytest.raises(assets.AssetsError, match=r"(?s)building etcd .* failed.*something broke"):
        assets.install(progress=lambda *_: None)
    assert assets.find_assets() is None
