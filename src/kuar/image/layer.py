"""Image layers from staging folders: launchers, precompiled .pyc, reproducible tarballs.

Place in the pipeline: after :mod:`.wheels` filled a staging tree, before :mod:`.oci` adds the
tarball to the image. Guarantees: the same tree gives the same bytes: entries sorted by
name, owner 0:0 with no names, mode 0755 or 0644 (group and others may read, nobody but root
may write), every mtime equal to the build's epoch, PAX format; .pyc files are hash-checked
(PEP 552), so they stay valid whatever the mtimes are, and Python never needs to write one.
"""

from __future__ import annotations

import configparser
import stat
import sys
import tarfile
from pathlib import Path

from kuar.image._run import disk_errors, run
from kuar.image.settings import ImageError

LAUNCHER = """#!/usr/bin/python3
# console script {name}, written by kuar image build
import sys
from {module} import {attr}
if __name__ == "__main__":  # not when multiprocessing's spawn imports this file again
    sys.exit({call}())
"""


def site_packages(python: str) -> str:
    """Where Debian's python3 looks for locally installed packages (in its sys.path)."""
    return f"/usr/local/lib/python{python}/dist-packages"


def write_launchers(root: Path, site: Path, names: set[str]) -> dict[str, Path]:
    """Write ``/usr/local/bin/NAME`` for each console script of the distributions ``names``.

    A launcher is a Python file with a ``#!/usr/bin/python3`` line: the kernel runs it, so an
    exec-form entrypoint needs no shell.
    """
    written: dict[str, Path] = {}
    bindir = root / "usr/local/bin"
    for info in sorted(site.glob("*.dist-info")):
        dist = info.name.removesuffix(".dist-info").rsplit("-", 1)[0].replace("_", "-").lower()
        if dist not in names or not (info / "entry_points.txt").exists():
            continue
        parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(info / "entry_points.txt")
        if not parser.has_section("console_scripts"):
            continue
        for name, value in parser.items("console_scripts"):
            module, _, attr = value.strip().partition(":")
            call = attr.strip()
            bindir.mkdir(parents=True, exist_ok=True)
            path = bindir / name
            path.write_text(LAUNCHER.format(name=name, module=module.strip(),
                                            attr=call.split(".")[0], call=call))
            path.chmod(0o755)
            written[name] = path
    return written


def compile_pyc(site: Path, *, image_python: str, logical: str) -> bool:
    """Precompile ``site`` as the image's Python will find it; False when it cannot here.

    The compiling interpreter must have the image's major.minor (the .pyc format and its
    file name both depend on it). PYTHONHASHSEED is fixed because marshal's output can
    depend on set iteration order.
    """
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != image_python:
        return False
    with disk_errors(site):
        run([sys.executable, "-m", "compileall", "-q", "-j", "0",
             "--invalidation-mode", "checked-hash", "-d", logical, str(site)],
            what=f"precompile {logical}", env={"PYTHONHASHSEED": "0"})
    return True


def write_tar(root: Path, out: Path, *, epoch: int) -> None:
    """Pack the tree under ``root`` into ``out``, reproducibly (see the module docstring).

    Parent folders (``usr/``, ``usr/local/``, ...) are included with mode 0755, as in the
    Debian layer below, so a runtime that applies the layer changes nothing about them.
    """
    with disk_errors(out.parent), tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in _walk(root):
            relative = path.relative_to(root).as_posix()
            info = tar.gettarinfo(str(path), arcname=relative)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = epoch
            if info.isdir():
                info.mode = 0o755
            elif info.isreg():
                info.mode = 0o755 if info.mode & stat.S_IXUSR else 0o644
            elif not info.issym():
                raise ImageError(f"unexpected file type in a layer: {path}")
            if info.isreg():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)


def _walk(root: Path) -> list[Path]:
    """Every entry under ``root``, parents before children, names sorted; links not followed."""
    found: list[Path] = []
    for path in sorted(root.iterdir(), key=lambda p: p.name):
        found.append(path)
        if path.is_dir() and not path.is_symlink():
            found.extend(_walk(path))
    return found
