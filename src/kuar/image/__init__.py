"""kuar.image: OCI images of a Python project, built without Docker and without a base image.

Place in the pipeline: beside the toolkit's layers, used by ``kuar image build`` (and by the
``make image`` of projects built on kuar). It orchestrates Debian's tools and pip through
subprocesses; it imports no other kuar package. The steps, in order:

- :mod:`kuar.image.rootfs` — Debian root file system with python3 by mmdebstrap, cached;
- :mod:`kuar.image.wheels` — the project's wheels (``python -m build``) and their
  dependencies, downloaded for the image's Python and platform, cached;
- :mod:`kuar.image.layer` — launchers, precompiled .pyc, reproducible layer tarballs;
- :mod:`kuar.image.oci` — umoci writes the OCI image; an OCI archive per image;
- :mod:`kuar.image.build` — the whole pipeline, digests in ``images.json``;
- :mod:`kuar.image.project` — images declared in ``pyproject.toml``.

Images run as uid 65532, need no shell (exec-form entrypoint through a ``#!/usr/bin/python3``
launcher) and work on a read-only root file system (precompiled, hash-checked .pyc and
``PYTHONDONTWRITEBYTECODE``). See docs/decisions/0009-images.md for the measurements.
"""

from kuar.image.build import IMAGES_JSON, BuiltImage, build_images
from kuar.image.project import ProjectImages, load_project
from kuar.image.settings import (
    BuildSettings,
    DebianSettings,
    ImageError,
    ImageSettings,
    default_cache,
)
from kuar.image.wheels import build_wheels

__all__ = [
    "IMAGES_JSON",
    "BuildSettings",
    "BuiltImage",
    "DebianSettings",
    "ImageError",
    "ImageSettings",
    "ProjectImages",
    "build_images",
    "build_wheels",
    "default_cache",
    "load_project",
]
