"""Python distributions for an image: the project's wheels, their dependencies, pip --target.

Place in the pipeline: after :mod:`.rootfs` (which says the image's Python and glibc) and
before :mod:`.layer`. :func:`build_wheels` runs the standard build frontend on the project's
folders; :func:`plan` splits what an image installs into the project's own wheels and the
third-party requirements; :func:`download` fetches those as wheels for the image's
interpreter and platform (not this machine's), cached by requirement set; :func:`install`
unpacks wheels into a staging tree with pip.

Guarantees: only wheels (``--only-binary=:all:``), so no compiler runs and nothing built here
depends on this machine; installs name ``name==version`` from a find-links folder, so pip
records no local path (no ``direct_url.json``) and two builds write the same files.
"""

from __future__ import annotations

import email.parser
import hashlib
import json
import os
import re
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from kuar.image._run import disk_errors, fresh_dir, run
from kuar.image.settings import ImageError


def canonical(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Wheel:
    """One wheel file and the metadata a plan needs."""

    path: Path
    name: str
    version: str
    requires: tuple[str, ...]


@dataclass(frozen=True)
class Target:
    """The interpreter and platform wheels are chosen for (the image's, not this machine's)."""

    python: str
    glibc: str
    machine: str

    def pip_args(self) -> list[str]:
        """Options of pip's cross install; manylinux tags from this glibc down to 2.5."""
        major, minor = (int(part) for part in self.glibc.split("."))
        platforms = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 4, -1)]
        platforms += [f"manylinux{tag}_{self.machine}" for tag in ("2014", "2010", "1")]
        version = self.python.replace(".", "")
        return ["--only-binary=:all:", "--python-version", self.python, "--implementation",
                "cp", "--abi", f"cp{version}", *(f"--platform={tag}" for tag in platforms)]


def build_wheels(folders: list[Path], outdir: Path, *, epoch: int) -> list[Path]:
    """Build an sdist and a wheel per project folder with ``python -m build``.

    The wheel is built from the sdist, as the standard frontend does. Returns the wheels.
    """
    try:
        import build  # noqa: F401 - only checking that the frontend is there
    except ImportError as exc:
        raise ImageError("the build frontend is missing: pip install build "
                         "(or pip install 'kuar[image]')") from exc
    outdir.mkdir(parents=True, exist_ok=True)
    wheels = []
    for folder in folders:
        before = set(outdir.glob("*.whl"))
        out = run([sys.executable, "-m", "build", "--outdir", str(outdir),
                   str(folder)], what=f"build the distributions of {folder}",
                  env={"SOURCE_DATE_EPOCH": str(epoch)})
        built = re.findall(r"Successfully built (.+\.whl)", out)
        if not built:
            new = set(outdir.glob("*.whl")) - before
            if len(new) != 1:
                raise ImageError(f"python -m build wrote no wheel for {folder}")
            wheels.append(new.pop())
        else:
            wheels.append(outdir / built[-1].strip())
    return wheels


def read_wheel(path: Path) -> Wheel:
    """Name, version and Requires-Dist of a wheel file."""
    with zipfile.ZipFile(path) as archive:
        metadata = next((n for n in archive.namelist()
                         if n.endswith(".dist-info/METADATA") and n.count("/") == 1), None)
        if metadata is None:
            raise ImageError(f"{path} is not a wheel (no METADATA)")
        message = email.parser.BytesParser().parsebytes(archive.read(metadata))
    return Wheel(path=path, name=str(message["Name"]), version=str(message["Version"]),
                 requires=tuple(str(r) for r in message.get_all("Requires-Dist") or ()))


def plan(install: tuple[str, ...], wheels: list[Wheel]) -> tuple[list[Wheel], list[str]]:
    """Split what an image installs into the project's wheels and third-party requirements.

    The project's wheels are ``install`` and the project distributions they require; the
    requirements left are for the package index, sorted.
    """
    by_name = {canonical(w.name): w for w in wheels}
    own: dict[str, Wheel] = {}
    third: set[str] = set()
    todo = [canonical(name) for name in install]
    while todo:
        name = todo.pop()
        if name in own:
            continue
        if name not in by_name:
            raise ImageError(f"no wheel of {name} among the project's wheels "
                             f"({', '.join(sorted(by_name)) or 'none'})")
        own[name] = by_name[name]
        for requirement in by_name[name].requires:
            if "extra ==" in requirement.replace('"', "'").replace("extra==", "extra =="):
                continue  # only the default dependencies go into an image
            req_name = canonical(re.split(r"[\s\[<>=!~;(@]", requirement, maxsplit=1)[0])
            if req_name in by_name:
                todo.append(req_name)
            else:
                third.add(requirement)
    return sorted(own.values(), key=lambda w: canonical(w.name)), sorted(third)


def download(requirements: list[str], target: Target, *, cache: Path,
             index_url: str | None) -> Path:
    """A folder of wheels satisfying ``requirements`` for ``target``, downloaded once.

    The folder is keyed by the requirements and the target; a warm build reads it without
    the network. Returns a folder that was renamed into place only when pip succeeded.
    """
    text = json.dumps({"r": requirements, "t": target.pip_args(), "i": index_url})
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    folder = cache / "wheels" / key
    if folder.exists():
        return folder
    work = fresh_dir(cache / "wheels", f".{key}-")
    try:
        with disk_errors(work):
            (work / "requirements.txt").write_text("\n".join(requirements) + "\n")
            index = ["--index-url", index_url] if index_url else []
            run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                 "--no-input", "--retries", "1", "--timeout", "15", *index, *target.pip_args(),
                 "--dest", str(work / "wheels"), "-r", str(work / "requirements.txt")],
                what=f"download the image's dependencies from the package index "
                     f"({index_url or 'pip configuration'}) for Python {target.python}")
            os.replace(work / "wheels", folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def install(wheels: list[Wheel], find_links: list[Path], site: Path, target: Target) -> None:
    """Unpack ``wheels`` (no dependencies) into ``site`` with pip, for ``target``."""
    if not wheels:
        return
    links = [arg for folder in find_links for arg in ("--find-links", str(folder))]
    with disk_errors(site):
        run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
             "--no-index", *links, "--no-deps", "--no-compile", "--no-warn-script-location",
             "--target", str(site), *target.pip_args(),
             *(f"{w.name}=={w.version}" for w in wheels)],
            what=f"install {', '.join(w.name for w in wheels)} into the image",
            env={"PYTHONHASHSEED": "0"})
    # pip --target writes console scripts with this machine's interpreter; the image gets its
    # own launchers (kuar.image.layer.write_launchers)
    shutil.rmtree(site / "bin", ignore_errors=True)


def wheel_folder_wheels(folder: Path) -> list[Wheel]:
    """Every wheel in a downloaded folder."""
    return [read_wheel(path) for path in sorted(folder.glob("*.whl"))]
