"""The Debian root file system: one mmdebstrap run per package list, cached as a tarball.

Place in the pipeline: first step of :func:`kuar.image.build_images`; its tarball becomes the
image's bottom layer as it is (mmdebstrap writes it sorted, with SOURCE_DATE_EPOCH mtimes for
what it creates and Debian's mtimes for packaged files), and :class:`RootFs` tells the later
steps which Python and glibc it carries.

Caveats: no Debian snapshot mirror is reachable here, so a cold build takes whatever
versions the mirror has that day; the cache key is the package list, not the versions.
Delete ``~/.cache/kuar/image/rootfs`` to pick up Debian security updates.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from kuar.image._run import disk_errors, fresh_dir, run
from kuar.image.settings import DebianSettings, ImageError

HOME = "/home/nonroot"


@dataclass(frozen=True)
class RootFs:
    """A cached root file system tarball and what later steps need to know about it."""

    tar: Path
    python: str
    """``major.minor`` of its python3, e.g. ``3.11``."""
    glibc: str
    """``major.minor`` of its libc6, e.g. ``2.36`` (picks the manylinux wheels)."""
    packages: dict[str, str]
    """Debian package -> version, for the record (images.json)."""


def _mmdebstrap_args(debian: DebianSettings, user: int) -> list[str]:
    args = [
        f"--variant={debian.variant}",
        f"--include={','.join(debian.packages)}",
        # merged /usr without the usrmerge package, which pulls in perl (~50 MB)
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        # a container runtime creates /dev; device nodes in a layer only get in the way
        "--skip=output/dev", "--skip=output/mknod",
        *(f"--dpkgopt=path-exclude={glob}" for glob in debian.exclude),
        # the non-root user: a passwd entry, so tools that look the uid up find a name
        f"--customize-hook=echo 'nonroot:x:{user}:{user}:nonroot:{HOME}:/usr/sbin/nologin'"
        " >> \"$1/etc/passwd\"",
        f"--customize-hook=echo 'nonroot:x:{user}:' >> \"$1/etc/group\"",
        f"--customize-hook=mkdir -p \"$1{HOME}\" && chown {user}:{user} \"$1{HOME}\"",
        # apt's downloaded lists and logs differ from run to run and nobody reads them
        "--customize-hook=rm -rf \"$1/var/lib/apt/lists\"/* \"$1/var/cache/apt\"/*"
        " \"$1/var/log\"/*.log \"$1/var/cache/ldconfig/aux-cache\"",
        debian.suite,
    ]
    return args


def cache_key(debian: DebianSettings, user: int, epoch: int) -> str:
    """Key of the cached tarball: everything that goes into the mmdebstrap command line."""
    text = json.dumps({"args": _mmdebstrap_args(debian, user), "mirrors": debian.mirrors,
                       "epoch": epoch, "arch": os.uname().machine, "v": 1}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def debian_rootfs(debian: DebianSettings, *, user: int, cache: Path, epoch: int) -> RootFs:
    """The cached root file system for ``debian``, building it with mmdebstrap if missing."""
    folder = cache / "rootfs"
    key = cache_key(debian, user, epoch)
    tar, info = folder / f"{key}.tar", folder / f"{key}.json"
    if not (tar.exists() and info.exists()):
        work = fresh_dir(folder, f".{key}-")
        try:
            with disk_errors(folder):
                partial = work / "rootfs.tar"
                run(["mmdebstrap", *_mmdebstrap_args(debian, user), str(partial),
                     *debian.mirrors],
                    what=f"build the Debian {debian.suite} root file system "
                         f"(packages: {', '.join(debian.packages)})",
                    env={"SOURCE_DATE_EPOCH": str(epoch), "TMPDIR": str(work)})
                facts = _inspect(partial)
                (work / "info.json").write_text(json.dumps(facts, indent=1, sort_keys=True))
                # the tarball first: a json without its tarball would not count as cached
                os.replace(partial, tar)
                os.replace(work / "info.json", info)
        finally:
            _remove_tree(work)
    facts = json.loads(info.read_text())
    return RootFs(tar=tar, python=facts["python"], glibc=facts["glibc"],
                  packages=facts["packages"])


def _inspect(tar: Path) -> dict[str, object]:
    python = None
    status = b""
    with tarfile.open(tar) as archive:
        for member in archive:
            found = re.fullmatch(r"\./usr/bin/python(3\.\d+)", member.name)
            if found:
                python = found.group(1)
            elif member.name == "./var/lib/dpkg/status":
                handle = archive.extractfile(member)
                status = handle.read() if handle else b""
    packages = dict(re.findall(r"^Package: (\S+)\n(?:.+\n)*?Version: (\S+)$",
                               status.decode(), flags=re.M))
    if python is None:
        raise ImageError(f"the root file system {tar} has no /usr/bin/python3.X: "
                         "add python3 to its packages")
    glibc = re.match(r"(\d+\.\d+)", packages.get("libc6", ""))
    if glibc is None:
        raise ImageError(f"the root file system {tar} has no libc6")
    return {"python": python, "glibc": glibc.group(1), "packages": packages}


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
