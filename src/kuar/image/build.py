"""``build_images``: Debian root file system + wheels -> OCI archives, digests on record.

Place in the pipeline: the whole pipeline; called by ``kuar image build`` (thin) or by a
project's own script. Per image: the cached Debian tarball (:mod:`.rootfs`) is the bottom
layer; the third-party wheels (:mod:`.wheels`) make the middle layer, cached by the wheel
set; the project's own wheels and console-script launchers make the top layer, the only one
a code change rebuilds. :mod:`.oci` writes the image and its archive.

Output, in :attr:`BuildSettings.output` (each file renamed into place only when complete):

- ``KEY.oci.tar``: the OCI archive of each image, tagged with its tag;
- ``images.json``: ``{"version": 1, "images": {KEY: {"name", "tag", "digest", "reference",
  "archive", "compressed_bytes", "layers", "python", "debian"}}}``; ``reference`` is
  ``name:tag@digest``;
- ``images.env``: ``KUAR_<KEY>_IMAGE=name:tag@digest`` lines (a kustomize
  ``configMapGenerator`` reads them as they are);
- ``kustomization.yaml``: a kustomize Component whose ``images:`` pins every image to its
  digest; an overlay lists the output folder under ``components:``.

Errors: :class:`ImageError`, one line naming what is missing (a Debian tool, the package
index, disk space). Caveats: Debian packages and PyPI are not pinned to a snapshot (none is
reachable here); the caches are, so two builds from the same caches give the same digests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from kuar.image import layer as layers
from kuar.image import oci, rootfs, wheels
from kuar.image._run import disk_errors, fresh_dir, require_tools
from kuar.image.settings import BuildSettings, ImageError, ImageSettings

log = logging.getLogger("kuar.image")

IMAGES_JSON = "images.json"


@dataclass(frozen=True)
class BuiltImage:
    """One image that is now complete in the output folder."""

    key: str
    name: str
    tag: str
    digest: str
    archive: Path
    compressed_bytes: int
    layers: tuple[int, ...]
    python: str

    @property
    def reference(self) -> str:
        """``name:tag@sha256:...``: pulls exactly this image, and still says its version."""
        return f"{self.name}:{self.tag}@{self.digest}"


def build_images(images: list[ImageSettings], settings: BuildSettings) -> list[BuiltImage]:
    """Build every image of ``images`` from the wheels in ``settings.wheels``; see module.

    All archives are written in a temporary folder inside the output folder and renamed
    into place together at the end, records last: a failed build leaves the previous
    outputs as they were, consistent with each other.
    """
    require_tools()
    if len({image.key for image in images}) != len(images):
        raise ImageError("two images share a key")
    project = [wheels.read_wheel(path) for path in sorted(settings.wheels.glob("*.whl"))]
    names = [wheels.canonical(w.name) for w in project]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ImageError(f"several wheels of {', '.join(twice)} in {settings.wheels}: "
                         "remove the old ones")
    settings.output.mkdir(parents=True, exist_ok=True)
    work = fresh_dir(settings.output, ".build-")
    try:
        built = [_build_one(image, project, settings, work) for image in images]
        final = []
        with disk_errors(settings.output):
            for image in built:
                target = settings.output / image.archive.name
                os.replace(image.archive, target)
                final.append(dataclasses.replace(image, archive=target))
        _write_records(final, settings)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _build_one(image: ImageSettings, project: list[wheels.Wheel], settings: BuildSettings,
               out: Path) -> BuiltImage:
    epoch, cache = settings.source_date_epoch, settings.cache
    base = rootfs.debian_rootfs(image.debian, user=image.user, cache=cache, epoch=epoch)
    target = wheels.Target(python=base.python, glibc=base.glibc, machine=os.uname().machine)
    own, requirements = wheels.plan(image.install, project)
    first = wheels.canonical(image.install[0]) if image.install else None
    tag = image.tag or next((w.version for w in own if wheels.canonical(w.name) == first), None)
    if not tag:
        raise ImageError(f"image {image.key}: no tag and nothing installed to take it from")
    site = layers.site_packages(base.python)
    work = fresh_dir(out, f"{image.key}-")
    try:
        deps_tar = _dependency_layer(requirements, target, site, settings)
        app_root = work / "app"
        app_site = app_root / site.lstrip("/")
        wheels.install(own, [settings.wheels], app_site, target)
        launchers = layers.write_launchers(app_root, app_site,
                                           {wheels.canonical(w.name) for w in own})
        entrypoint = _entrypoint(image, launchers)
        compiled = settings.compile and layers.compile_pyc(app_site, image_python=base.python,
                                                           logical=site)
        if settings.compile and not compiled:
            log.warning("image %s: .pyc not precompiled (this Python is not %s)",
                        image.key, base.python)
        app_tar = work / "app.tar"
        layers.write_tar(app_root, app_tar, epoch=epoch)
        config = oci.ImageConfig(
            entrypoint=entrypoint, cmd=image.cmd, user=f"{image.user}:{image.user}",
            env=(("PATH", "/usr/local/bin:/usr/bin:/bin"), ("LANG", "C.UTF-8"),
                 ("HOME", rootfs.HOME), ("PYTHONDONTWRITEBYTECODE", "1"),
                 ("PYTHONUNBUFFERED", "1"), *image.env),
            labels=(("org.opencontainers.image.title", image.name),
                    ("org.opencontainers.image.version", tag), *image.labels))
        layout = work / "layout"
        digest = oci.build_layout(layout, image.name, tag, [
            oci.Layer(base.tar, f"mmdebstrap {image.debian.suite} "
                                f"{','.join(image.debian.packages)}"),
            oci.Layer(deps_tar, f"pip install {' '.join(requirements)}"),
            oci.Layer(app_tar, f"pip install {' '.join(w.name + '==' + w.version for w in own)}"),
        ], config, epoch=epoch)
        facts = oci.image_facts(layout)
        final = out / f"{image.key}.oci.tar"
        oci.archive(layout, final, epoch=epoch)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sizes = facts["layers"]
    assert isinstance(sizes, list)
    return BuiltImage(key=image.key, name=image.name, tag=tag, digest=digest, archive=final,
                      compressed_bytes=int(str(facts["compressed_bytes"])),
                      layers=tuple(int(s) for s in sizes), python=base.python)


def _dependency_layer(requirements: list[str], target: wheels.Target, site: str,
                      settings: BuildSettings) -> Path:
    """The third-party layer's tarball, cached by the exact wheel files that go in."""
    folder = wheels.download(requirements, target, cache=settings.cache,
                             index_url=settings.index_url)
    found = wheels.wheel_folder_wheels(folder)
    text = json.dumps({"wheels": sorted(p.path.name for p in found), "site": site,
                       "epoch": settings.source_date_epoch, "compile": settings.compile,
                       "python": target.python, "v": 1})
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    cached = settings.cache / "layers" / f"deps-{key}.tar"
    if cached.exists():
        return cached
    work = fresh_dir(settings.cache / "layers", f".deps-{key}-")
    try:
        root = work / "root"
        deps_site = root / site.lstrip("/")
        deps_site.mkdir(parents=True)
        wheels.install(found, [folder], deps_site, target)
        if settings.compile:
            layers.compile_pyc(deps_site, image_python=target.python, logical=site)
        layers.write_tar(root, work / "deps.tar", epoch=settings.source_date_epoch)
        with disk_errors(cached.parent):
            os.replace(work / "deps.tar", cached)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return cached


def _entrypoint(image: ImageSettings, launchers: dict[str, Path]) -> tuple[str, ...]:
    if not image.entrypoint:
        raise ImageError(f"image {image.key}: empty entrypoint")
    head, *rest = image.entrypoint
    if "/" not in head:
        if head not in launchers:
            raise ImageError(f"image {image.key}: entrypoint {head!r} is no console script of "
                             f"{', '.join(image.install)} (found: "
                             f"{', '.join(sorted(launchers)) or 'none'})")
        head = f"/usr/local/bin/{head}"
    return (head, *rest)


def _write_records(built: list[BuiltImage], settings: BuildSettings) -> None:
    """images.json, images.env and the kustomize Component, each written then renamed."""
    record = {"version": 1, "images": {b.key: {
        "name": b.name, "tag": b.tag, "digest": b.digest, "reference": b.reference,
        "archive": b.archive.name, "compressed_bytes": b.compressed_bytes,
        "layers": list(b.layers), "python": b.python} for b in built}}
    env = "".join(f"KUAR_{b.key.upper().replace('-', '_')}_IMAGE={b.reference}\n"
                  for b in built)
    component = ("# Written by `kuar image build`: pins each image to the digest just built.\n"
                 "# Use it from an overlay: components: [<this folder>]\n"
                 "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nimages:\n")
    component += "".join(f"- name: {b.name}\n  digest: {b.digest}\n" for b in built)
    for name, text in ((IMAGES_JSON, json.dumps(record, indent=2) + "\n"),
                       ("images.env", env), ("kustomization.yaml", component)):
        partial = settings.output / f".{name}.partial"
        with disk_errors(settings.output):
            partial.write_text(text)
            os.replace(partial, settings.output / name)
