"""kuar image build: what the images hold, reproducible digests, the records for deploy/."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from tests.integration.image.conftest import Built, build


def _blobs(archive: Path) -> tuple[dict[str, Any], dict[str, Any], list[list[str]]]:
    """(manifest, config, file names per layer) of an OCI archive."""
    with tarfile.open(archive) as tar:
        def blob(digest: str) -> bytes:
            handle = tar.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}")
            assert handle is not None
            return handle.read()

        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        layers = []
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(layer["digest"])))) as lt:
                layers.append(lt.getnames())
    return manifest, config, layers


def test_loadgen_image_holds_only_what_kuar_loadgen_imports(built_images: Built) -> None:
    _, config, layers = _blobs(built_images.archive("loadgen"))
    names = {name for layer in layers for name in layer}
    site = "usr/local/lib/python3.11/dist-packages"
    for present in ("kuar_loadgen/cli.py", "httptools", "uvloop", "hdrh", "click", "rich",
                    "prometheus_client"):
        assert f"{site}/{present}" in names, present
    for absent in ("kuar", "kuar_loadtest", "matplotlib", "pydantic", "kubernetes_asyncio",
                   "numpy", "aiohttp"):
        assert f"{site}/{absent}" not in names, absent
    # precompiled for a read-only root file system
    assert f"{site}/kuar_loadgen/__pycache__/cli.cpython-311.pyc" in names
    c = config["config"]
    assert c["Entrypoint"] == ["/usr/local/bin/kuar-loadgen"]
    assert c["User"] == "65532:65532"
    assert "PYTHONDONTWRITEBYTECODE=1" in c["Env"]


def test_operator_image_runs_kuar_loadtest_run(built_images: Built) -> None:
    _, config, layers = _blobs(built_images.archive("operator"))
    names = {name for layer in layers for name in layer}
    site = "usr/local/lib/python3.11/dist-packages"
    for present in ("kuar/cli/main.py", "kuar_loadtest/operator.py", "kuar_loadgen/result.py",
                    "pydantic", "kubernetes_asyncio"):
        assert f"{site}/{present}" in names, present
    c = config["config"]
    assert c["Entrypoint"] == ["/usr/local/bin/kuar"]
    assert c["Cmd"] == ["loadtest", "run"]
    assert c["User"] == "65532:65532"
    # the project's own code is the top layer: a code change rebuilds only it
    assert any(n.startswith(f"{site}/kuar/") for n in layers[-1])
    assert not any(n.startswith(f"{site}/pydantic/") for n in layers[-1])


def test_loadgen_image_is_much_smaller_than_the_operators(built_images: Built) -> None:
    loadgen = built_images.image("loadgen")["compressed_bytes"]
    operator = built_images.image("operator")["compressed_bytes"]
    assert loadgen < 0.5 * operator, (loadgen, operator)


def test_records_pin_the_digests(built_images: Built) -> None:
    out = built_images.output
    env = dict(line.split("=", 1) for line in (out / "images.env").read_text().splitlines())
    component = (out / "kustomization.yaml").read_text()
    for key in ("operator", "loadgen"):
        image = built_images.image(key)
        manifest, _, _ = _blobs(out / image["archive"])
        assert image["reference"] == f"{image['name']}:0.1.0@{image['digest']}"
        assert env[f"KUAR_{key.upper()}_IMAGE"] == image["reference"]
        assert f"- name: {image['name']}\n  digest: {image['digest']}\n" in component
        assert sum(layer["size"] for layer in manifest["layers"]) < image["compressed_bytes"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_rebuild_from_the_same_wheels_gives_the_same_digests(built_images: Built,
                                                              tmp_path: Path) -> None:
    proc = build(tmp_path / "again", built_images.dist, "--no-build")
    assert proc.returncode == 0, proc.stderr
    again = json.loads((tmp_path / "again" / "images.json").read_text())
    for key in ("operator", "loadgen"):
        assert again["images"][key]["digest"] == built_images.image(key)["digest"]
        assert (tmp_path / "again" / f"{key}.oci.tar").read_bytes() == \
            built_images.archive(key).read_bytes()
