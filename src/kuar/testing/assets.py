"""Control-plane binaries: find them, or build them once from the Go module proxy and cache them.

Place in the pipeline: ``kuar controlplane install`` and :class:`~kuar.testing.ControlPlane`
call :func:`install` / :func:`find_assets` before starting any process. Known as
``setup-envtest`` in controller-runtime.

No registry ships kube-apiserver, so kuar builds kube-apiserver, kube-controller-manager,
kube-scheduler, kubectl and etcd from two pinned Go wrapper modules (``tools/controlplane/kube``
and ``tools/controlplane/etcd``; see docs/decisions/0001-control-plane-binaries.md).

Guarantees:
- ``$KUBEBUILDER_ASSETS`` wins: when it names a folder holding ``etcd`` and ``kube-apiserver``
  nothing is built (controller-runtime's convention).
- The cache folder is keyed by the pinned versions and a hash of both ``go.sum`` files, so a
  change of pin builds a new folder and never reuses a stale one. The folder appears only when
  every binary built (built in a temporary folder, then renamed); a lock file serialises
  concurrent installs.
Errors: :class:`AssetsError` with one readable message: Go missing or too old, or which binary
failed to build with the end of the build log and the log's path.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
MIN_GO = (1, 26)

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
ALL_BINARIES = ("etcd", *KUBE_BINARIES)
REQUIRED = ("etcd", "kube-apiserver")

Progress = Callable[[str, int, int], None]
"""Called as ``progress(step, done, total)`` while building."""


class AssetsError(RuntimeError):
    """The control-plane binaries are missing and cannot be built."""


@dataclass(frozen=True, slots=True)
class Assets:
    """A folder holding the control-plane binaries."""

    directory: Path

    def path(self, name: str) -> Path:
        """The path of binary ``name``; raises :class:`AssetsError` if it is not there."""
        p = self.directory / name
        if not os.access(p, os.X_OK):
            raise AssetsError(
                f"{name} not found in {self.directory}; run `kuar controlplane install` "
                "(or unset KUBEBUILDER_ASSETS to let kuar build it)"
            )
        return p


def modules_dir() -> Path:
    """Where the Go wrapper modules are: the repository's tools/, or a wheel's copy."""
    here = Path(__file__).resolve()
    for candidate in (here.parent / "_controlplane", here.parents[3] / "tools" / "controlplane"):
        if (candidate / "kube" / "go.mod").exists():
            return candidate
    raise AssetsError("the Go wrapper modules (tools/controlplane) are missing from this install")


def cache_root() -> Path:
    """``$KUAR_CACHE_DIR``, else ``$XDG_CACHE_HOME/kuar``, else ``~/.cache/kuar``."""
    if os.environ.get("KUAR_CACHE_DIR"):
        return Path(os.environ["KUAR_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kuar"


def cache_key(mods: Path | None = None) -> str:
    """``k8s-<v>-etcd-<v>-<hash>``: the pins plus a hash of both go.mod and go.sum files."""
    mods = mods or modules_dir()
    digest = hashlib.sha256()
    for part in ("kube/go.mod", "kube/go.sum", "etcd/go.mod", "etcd/go.sum"):
        digest.update((mods / part).read_bytes())
    return f"k8s-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}-{digest.hexdigest()[:12]}"


def _complete(directory: Path, names: tuple[str, ...]) -> bool:
    return all(os.access(directory / n, os.X_OK) for n in names)


def find_assets() -> Assets | None:
    """The binaries' folder if they exist already ($KUBEBUILDER_ASSETS or the cache)."""
    env = os.environ.get("KUBEBUILDER_ASSETS")
    if env and _complete(Path(env), REQUIRED):
        return Assets(Path(env))
    try:
        cached = cache_root() / "controlplane" / cache_key()
    except AssetsError:
        return None
    return Assets(cached) if _complete(cached, ALL_BINARIES) else None


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise AssetsError(
            "Go is not installed: building the control plane needs Go >= "
            f"{MIN_GO[0]}.{MIN_GO[1]} (install it from your package manager or go.dev), "
            "or set KUBEBUILDER_ASSETS to a folder holding etcd and kube-apiserver"
        )
    out = subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, check=False,
        env={**os.environ, "GOTOOLCHAIN": "local"},
    ).stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", out)
    if not match or (int(match[1]), int(match[2])) < MIN_GO:
        raise AssetsError(
            f"Go {out or '(unknown version)'} is too old: Kubernetes {KUBERNETES_VERSION} "
            f"needs Go >= {MIN_GO[0]}.{MIN_GO[1]}"
        )
    return go


def _ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    stamps = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        stamps += [f"-X {pkg}.gitVersion={version}", f"-X {pkg}.gitMajor={major}",
                   f"-X {pkg}.gitMinor={minor}", f"-X {pkg}.gitTreeState=clean"]
    return " ".join(["-s", "-w", *stamps])


def _build_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GOTOOLCHAIN="local", CGO_ENABLED="0", GOFLAGS="-mod=readonly -buildvcs=false")
    return env


def _count_packages(go: str, module: Path, packages: list[str]) -> int:
    out = subprocess.run(
        [go, "list", "-deps", *packages], cwd=module, capture_output=True, text=True,
        env=_build_env(), check=False,
    )
    return max(1, len(out.stdout.split()))


def _run_build(
    go: str, module: Path, packages: list[str], out_dir: Path, ldflags: str, log: Path,
    label: str, progress: Progress | None,
) -> None:
    total = _count_packages(go, module, packages) if progress else 0
    cmd = [go, "build", "-v", "-trimpath", "-ldflags", ldflags, "-o", f"{out_dir}/", *packages]
    done = 0
    with log.open("a") as log_file:
        log_file.write(f"$ {' '.join(cmd)}\n")
        log_file.flush()
        proc = subprocess.Popen(
            cmd, cwd=module, env=_build_env(), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log_file.write(line)
            done += 1
            if progress:
                progress(label, min(done, total), total)
        code = proc.wait()
    if code != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise AssetsError(
            f"building {label} failed (go build exit {code}); full log: {log}\n{tail}"
        )
    if progress:
        progress(label, total, total)  # cached packages print nothing; the step is complete


def build_cached(target: Path, complete: Callable[[Path], bool],
                 build: Callable[[str, Path, Path], None], *, force: bool = False) -> Path:
    """Return ``target`` once ``complete(target)``, building it with ``build`` if needed.

    ``build(go, staging, log)`` fills a temporary folder beside ``target``, which is renamed to
    ``target`` only when ``complete(staging)``; a lock file beside it serialises concurrent
    builds; the build log is ``<target>.build.log``. Shared by the control plane's and the
    real node's parts (:mod:`kuar.testing.realnode.assets`).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same folder
        if complete(target) and not force:
            return target
        go = _go()
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        log = target.parent / f"{target.name}.build.log"
        log.write_text("")
        try:
            build(go, staging, log)
            if not complete(staging):
                raise AssetsError(f"build finished but parts are missing in {staging}; "
                                  f"log: {log}")
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target


def install(*, progress: Progress | None = None, force: bool = False) -> Assets:
    """Return the binaries' folder, building everything first when it is not cached.

    ``$KUBEBUILDER_ASSETS`` is honoured unless ``force``. A cold build on 2 cores takes
    minutes; later calls return at once.
    """
    if not force:
        found = find_assets()
        if found is not None:
            return found
    mods = modules_dir()

    def build(go: str, staging: Path, log: Path) -> None:
        _run_build(
            go, mods / "etcd", ["go.etcd.io/etcd/server/v3"], staging,
            "-s -w", log, f"etcd {ETCD_VERSION}", progress,
        )
        # go names the binary after the module path without its major-version suffix
        for built_name in ("server", "v3"):
            if (staging / built_name).exists():
                (staging / built_name).rename(staging / "etcd")
        _run_build(
            go, mods / "kube", [f"k8s.io/kubernetes/cmd/{b}" for b in KUBE_BINARIES],
            staging, _ldflags(KUBERNETES_VERSION), log,
            f"Kubernetes {KUBERNETES_VERSION}", progress,
        )
        missing = [b for b in ALL_BINARIES if not (staging / b).exists()]
        if missing:
            raise AssetsError(f"build finished but {', '.join(missing)} missing; log: {log}")

    target = cache_root() / "controlplane" / cache_key(mods)
    return Assets(build_cached(target, lambda d: _complete(d, ALL_BINARIES), build, force=force))
