"""What an image holds and how a build runs: frozen settings, no I/O.

Place in the pipeline: the caller (``kuar image build``, or a project's own script) fills
:class:`ImageSettings` per image and one :class:`BuildSettings`; :func:`kuar.image.build_images`
reads them. Known as a Dockerfile's FROM/ENTRYPOINT/USER lines, here as data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_EPOCH = 1_700_000_000
"""File mtimes and the image's ``created`` when neither SOURCE_DATE_EPOCH nor git gives one
(2023-11-14T22:13:20Z)."""


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/kuar/image`` (``~/.cache/kuar/image``), next to the control plane's."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kuar" / "image"


class ImageError(Exception):
    """A build failed for a reason the user can fix; the message is one line naming it."""


@dataclass(frozen=True, kw_only=True)
class DebianSettings:
    """The Debian root file system every image starts from (built by mmdebstrap, cached)."""

    suite: str = "bookworm"
    """Debian release. bookworm's python3 is 3.11, the oldest Python kuar supports."""
    variant: str = "essential"
    """mmdebstrap variant: Essential:yes packages plus ``packages``; no apt, no init."""
    packages: tuple[str, ...] = ("python3", "ca-certificates")
    """Extra Debian packages: the interpreter, and a trust store for HTTPS targets."""
    mirrors: tuple[str, ...] = ()
    """Debian mirrors (``http://deb.debian.org/debian``); empty uses this machine's apt
    sources, which is what works behind a local mirror or proxy."""
    exclude: tuple[str, ...] = (
        "/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*",
        "/usr/share/lintian/*", "/usr/share/bash-completion/*",
    )
    """dpkg path-exclude globs: documentation no container reads (~10 MB). Python's test
    package stays: python3.11's postinst compiles it."""


@dataclass(frozen=True, kw_only=True)
class ImageSettings:
    """One image: a Debian root file system, Python distributions, an exec-form entrypoint."""

    key: str
    """Short name used for files and keys (``operator`` -> ``operator.oci.tar``,
    ``KUAR_OPERATOR_IMAGE``)."""
    name: str
    """Repository part of the reference, e.g. ``kuar.dev/loadgen``."""
    install: tuple[str, ...]
    """Distributions of the project to install with their dependencies (``kuar-loadgen``).
    Their wheels come from :attr:`BuildSettings.wheels`; dependencies from the package index."""
    entrypoint: tuple[str, ...]
    """Exec-form entrypoint. A bare name is a console script of an installed distribution,
    run by its launcher ``/usr/local/bin/NAME`` (a ``#!/usr/bin/python3`` file: no shell)."""
    cmd: tuple[str, ...] = ()
    """Default arguments (``loadtest run``)."""
    tag: str | None = None
    """Tag; ``None`` takes the version of the first distribution in :attr:`install`."""
    user: int = 65532
    """Numeric uid and gid the process runs as (distroless's ``nonroot``): not root, and a
    number so that ``runAsNonRoot`` can check it without reading /etc/passwd."""
    env: tuple[tuple[str, str], ...] = ()
    """Extra environment variables, added after the defaults (PATH, PYTHONDONTWRITEBYTECODE,
    PYTHONUNBUFFERED, LANG, HOME)."""
    labels: tuple[tuple[str, str], ...] = ()
    """Extra OCI labels, added after ``org.opencontainers.image.{title,version}``."""
    debian: DebianSettings = field(default_factory=DebianSettings)
    """The base root file system."""


@dataclass(frozen=True, kw_only=True)
class BuildSettings:
    """Where a build reads and writes."""

    output: Path
    """Folder that receives ``KEY.oci.tar`` per image, ``images.json``, ``images.env`` and a
    kustomize Component ``kustomization.yaml``. Each file appears complete or not at all."""
    wheels: Path
    """Folder with the project's wheels (what ``python -m build`` wrote)."""
    cache: Path = field(default_factory=default_cache)
    """Root file systems keyed by their package list, downloaded wheels keyed by the
    requirements, dependency layers keyed by those wheels: a warm build reuses all three."""
    source_date_epoch: int = DEFAULT_EPOCH
    """Every file's mtime and the image's ``created`` time: same inputs, same digests."""
    index_url: str | None = None
    """Package index for dependencies; ``None`` uses pip's own configuration (PIP_INDEX_URL,
    pip.conf)."""
    compile: bool = True
    """Precompile .pyc (hash-checked, so valid whatever the mtimes) for a read-only root file
    system. Needs this Python's major.minor to equal the image's; otherwise skipped with a
    warning, and the image still works (slower start)."""
