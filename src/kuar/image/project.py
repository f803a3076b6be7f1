"""A project's images as its pyproject.toml declares them (``[tool.kuar.image]``).

Place in the pipeline: read by ``kuar image build`` before anything is built; turns the
table into :class:`ImageSettings`. The format::

    [tool.kuar.image]
    distributions = [".", "loadgen"]   # project folders built with python -m build
    suite = "bookworm"                 # optional: Debian release
    packages = ["python3", "ca-certificates"]   # optional: Debian packages
    mirrors = ["http://deb.debian.org/debian"]  # optional: default, this machine's apt sources

    [tool.kuar.image.images.operator]  # the key names the files: operator.oci.tar
    name = "kuar.dev/operator"
    install = ["kuar"]                 # distributions, with their dependencies
    entrypoint = ["kuar"]              # a console script, or an absolute path
    cmd = ["loadtest", "run"]
    env = { MPLCONFIGDIR = "/tmp/matplotlib" }   # optional
    # optional: tag (default: the version of install[0]), user (default 65532)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kuar.image.settings import DebianSettings, ImageError, ImageSettings


@dataclass(frozen=True)
class ProjectImages:
    """The folders to build wheels from, and the images."""

    distributions: tuple[Path, ...]
    images: tuple[ImageSettings, ...]


def load_project(project: Path) -> ProjectImages:
    """Read ``project/pyproject.toml``'s ``[tool.kuar.image]``; ImageError if absent or bad."""
    path = project / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ImageError(f"{path} not found (pass --project DIR)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ImageError(f"{path}: {exc}") from exc
    table = data.get("tool", {}).get("kuar", {}).get("image")
    if not isinstance(table, dict) or not table.get("images"):
        raise ImageError(f"{path} declares no images ([tool.kuar.image.images.KEY])")
    debian = DebianSettings()
    if {"suite", "packages", "mirrors"} & set(table):
        debian = DebianSettings(suite=str(table.get("suite", debian.suite)),
                                packages=tuple(table.get("packages", debian.packages)),
                                mirrors=tuple(table.get("mirrors", debian.mirrors)))
    images = []
    for key, spec in table["images"].items():
        images.append(_image(path, key, spec, debian))
    folders = tuple(project / str(folder) for folder in table.get("distributions", ["."]))
    return ProjectImages(distributions=folders, images=tuple(images))


def _image(path: Path, key: str, spec: dict[str, Any], debian: DebianSettings
           ) -> ImageSettings:
    unknown = set(spec) - {"name", "install", "entrypoint", "cmd", "tag", "user", "env",
                           "labels"}
    if unknown:
        raise ImageError(f"{path}: image {key}: unknown field(s) {', '.join(sorted(unknown))}")
    for needed in ("name", "install", "entrypoint"):
        if needed not in spec:
            raise ImageError(f"{path}: image {key}: {needed} is required")
    return ImageSettings(
        key=key, name=str(spec["name"]), install=tuple(spec["install"]),
        entrypoint=tuple(spec["entrypoint"]), cmd=tuple(spec.get("cmd", ())),
        tag=spec.get("tag"), user=int(spec.get("user", 65532)),
        env=tuple((str(k), str(v)) for k, v in spec.get("env", {}).items()),
        labels=tuple((str(k), str(v)) for k, v in spec.get("labels", {}).items()),
        debian=debian)
