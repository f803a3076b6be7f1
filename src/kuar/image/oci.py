"""OCI images from layer tarballs with umoci, and the OCI archive a user loads or pushes.

Place in the pipeline: last step of :func:`kuar.image.build_images`. umoci (Debian's) writes
the OCI image layout: it gzips each layer (deterministic: same tarball, same blob) and writes
the config and manifest; every time in them is the build's epoch, so the manifest digest
depends only on the inputs. :func:`archive` packs the layout as an OCI archive
(``podman load -i``, ``skopeo copy oci-archive:FILE:TAG docker://...``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from kuar.image._run import disk_errors, run

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


def oci_arch() -> str:
    """This machine's architecture in OCI words (the images are built for it)."""
    machine = os.uname().machine
    return _ARCH.get(machine, machine)


@dataclass(frozen=True)
class Layer:
    """An uncompressed layer tarball and the history line that says what it holds."""

    tar: Path
    created_by: str


@dataclass(frozen=True)
class ImageConfig:
    """What a container of the image runs, as the OCI image config says it."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    user: str
    env: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]
    workdir: str = "/"


def _stamp(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_layout(layout: Path, name: str, tag: str, layers: list[Layer], config: ImageConfig,
                 *, epoch: int) -> str:
    """Write an OCI image layout at ``layout`` (must not exist); return the manifest digest.

    The index names the image ``name:tag`` (``org.opencontainers.image.ref.name``), so
    ``podman load`` gives it that name; the manifest digest does not depend on it.
    """
    image = f"{layout}:{tag}"
    when = _stamp(epoch)
    with disk_errors(layout.parent):
        run(["umoci", "init", "--layout", str(layout)], what="create an OCI image layout")
        run(["umoci", "new", "--image", image], what="create an empty OCI image")
        for layer in layers:
            run(["umoci", "raw", "add-layer", "--image", image, "--history.created", when,
                 "--history.created_by", layer.created_by, "--history.author", "kuar",
                 str(layer.tar)], what=f"add the layer {layer.tar.name}")
        args = ["umoci", "config", "--image", image, "--created", when, "--author", "kuar",
                "--history.created", when, "--history.created_by", "kuar image build: config",
                "--os", "linux", "--architecture", oci_arch(),
                "--config.user", config.user, "--config.workingdir", config.workdir,
                "--clear=config.entrypoint", "--clear=config.cmd", "--clear=config.env"]
        args += [f"--config.entrypoint={part}" for part in config.entrypoint]
        args += [f"--config.cmd={part}" for part in config.cmd]
        args += [f"--config.env={key}={value}" for key, value in config.env]
        args += [f"--config.label={key}={value}" for key, value in config.labels]
        run(args, what="write the image config")
        run(["umoci", "gc", "--layout", str(layout)], what="drop unused blobs")
        index_path = layout / "index.json"
        index = json.loads(index_path.read_text())
        for entry in index["manifests"]:
            entry.setdefault("annotations", {})["org.opencontainers.image.ref.name"] = \
                f"{name}:{tag}"
        index_path.write_text(json.dumps(index, sort_keys=True, separators=(",", ":")))
    return manifest_digest(layout)


def manifest_digest(layout: Path) -> str:
    """The digest of the layout's one manifest: what ``name@sha256:...`` refers to."""
    index = json.loads((layout / "index.json").read_text())
    return str(index["manifests"][0]["digest"])


def image_facts(layout: Path) -> dict[str, object]:
    """Compressed size and layer sizes of the layout's image (what a registry stores)."""
    blobs = layout / "blobs" / "sha256"
    digest = manifest_digest(layout)
    manifest = json.loads((blobs / digest.split(":", 1)[1]).read_text())
    layers = [int(layer["size"]) for layer in manifest["layers"]]
    config = json.loads((blobs / manifest["config"]["digest"].split(":", 1)[1]).read_text())
    return {"compressed_bytes": sum(layers) + int(manifest["config"]["size"]),
            "layers": layers, "config": config.get("config", {})}


def archive(layout: Path, out: Path, *, epoch: int) -> None:
    """Pack ``layout`` as an OCI archive at ``out``: sorted, fixed owner, mode and mtime."""
    entries = sorted(layout.rglob("*"), key=lambda p: p.relative_to(layout).as_posix())
    with disk_errors(out.parent), tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in entries:
            info = tar.gettarinfo(str(path), arcname=path.relative_to(layout).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = epoch
            info.mode = 0o755 if info.isdir() else 0o644
            if info.isreg():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
