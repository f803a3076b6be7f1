"""The real node's parts: build them once from the Go module proxy and cache them.

Place in the pipeline: :class:`~kuar.testing.realnode.RealNode` calls :func:`install` before
starting anything; ``kuar up --node real`` shows the same progress bar as
``kuar controlplane install``. Debian supplies containerd, runc and the CNI plugins
(``make node-tools``); this module builds the rest.

What is built, and from where:
- kubelet and kube-proxy from ``tools/node/kube``: the control plane's Kubernetes module and
  version (``tools/controlplane/kube``) plus the go.sum entries these two commands need. The
  same versions compile to the same packages, so Go's build cache reuses the control plane's.
- crictl, CoreDNS (only the plugins the node uses) and the sandbox ("pause") program from
  ``tools/node/addons``.
- Two OCI archives made from those static programs: ``pause.oci.tar``
  (``kuar.dev/pause:1.0``, the runtime's sandbox image) and ``coredns.oci.tar``
  (``kuar.dev/coredns:<version>``). No registry is involved.

Guarantees: as :mod:`kuar.testing.assets`: the cache folder (``~/.cache/kuar/node/<key>``) is
keyed by the versions and a hash of the modules' files, appears only complete (built in a
temporary folder, then renamed), and a lock file serialises concurrent installs.
Errors: :class:`~kuar.testing.assets.AssetsError` with one readable message.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kuar.image.layer import write_tar
from kuar.image.oci import ImageConfig, Layer, archive, build_layout
from kuar.testing.assets import (
    KUBERNETES_VERSION,
    AssetsError,
    Progress,
    _ldflags,
    _run_build,
    build_cached,
    cache_root,
)

COREDNS_VERSION = "v1.15.0"
CRICTL_VERSION = "v1.37.0"
PAUSE_IMAGE = "kuar.dev/pause:1.0"
COREDNS_IMAGE = f"kuar.dev/coredns:{COREDNS_VERSION.lstrip('v')}"
BINARIES = ("kubelet", "kube-proxy", "crictl", "coredns", "pause")
ARCHIVES = ("pause.oci.tar", "coredns.oci.tar")
_EPOCH = 1700000000  # the images' times, as in `kuar image build`: same inputs, same digests


@dataclass(frozen=True, slots=True)
class NodeAssets:
    """A folder holding the node's binaries and its two OCI archives."""

    directory: Path

    def path(self, name: str) -> Path:
        """The path of binary or archive ``name``; raises AssetsError if it is missing."""
        p = self.directory / name
        if not p.exists():
            raise AssetsError(f"{name} not found in {self.directory}; run `kuar up --node real` "
                              "or `make node-tools` to build the node's parts")
        return p


def modules_dir() -> Path:
    """Where the node's Go modules are: the repository's tools/node, or a wheel's copy."""
    here = Path(__file__).resolve()
    for candidate in (here.parent / "_node", here.parents[4] / "tools" / "node"):
        if (candidate / "kube" / "go.mod").exists():
            return candidate
    raise AssetsError("the node's Go modules (tools/node) are missing from this install")


def cache_key(mods: Path | None = None) -> str:
    """``k8s-<v>-coredns-<v>-<hash>``: the pins plus a hash of the modules' files."""
    mods = mods or modules_dir()
    digest = hashlib.sha256()
    for part in ("kube/go.mod", "kube/go.sum", "addons/go.mod", "addons/go.sum",
                 "addons/pause/main.go", "addons/coredns/main.go"):
        digest.update((mods / part).read_bytes())
    return f"k8s-{KUBERNETES_VERSION}-coredns-{COREDNS_VERSION}-{digest.hexdigest()[:12]}"


def _complete(directory: Path) -> bool:
    return all((directory / n).exists() for n in (*BINARIES, *ARCHIVES))


def find_node_assets() -> NodeAssets | None:
    """The cached parts, if every one of them is there."""
    try:
        cached = cache_root() / "node" / cache_key()
    except AssetsError:
        return None
    return NodeAssets(cached) if _complete(cached) else None


def _static_image(binary: Path, name: str, out: Path, entrypoint: tuple[str, ...],
                  work: Path) -> None:
    """An OCI archive whose one layer holds ``binary`` as ``/<binary name>``."""
    tree = work / f"{binary.name}-tree"
    tree.mkdir()
    shutil.copy2(binary, tree / binary.name)
    layer = work / f"{binary.name}.tar"
    write_tar(tree, layer, epoch=_EPOCH)
    repository, tag = name.rsplit(":", 1)
    layout = work / f"{binary.name}-layout"
    build_layout(layout, repository, tag, [Layer(layer, f"kuar: static {binary.name}")],
                 ImageConfig(entrypoint=entrypoint, cmd=(), user="0:0", env=(), labels=()),
                 epoch=_EPOCH)
    archive(layout, out, epoch=_EPOCH)


def install(*, progress: Progress | None = None) -> NodeAssets:
    """Return the node's parts, building them first when they are not cached.

    Cold: about three minutes for kubelet and kube-proxy on top of a built control plane, and
    five for CoreDNS and crictl (2 cores, shared); later calls return at once.
    """
    found = find_node_assets()
    if found is not None:
        return found
    mods = modules_dir()

    def build(go: str, staging: Path, log: Path) -> None:
        _run_build(go, mods / "kube",
                   ["k8s.io/kubernetes/cmd/kubelet", "k8s.io/kubernetes/cmd/kube-proxy"],
                   staging, _ldflags(KUBERNETES_VERSION), log,
                   f"kubelet, kube-proxy {KUBERNETES_VERSION}", progress)
        _run_build(go, mods / "addons",
                   ["./pause", "./coredns", "sigs.k8s.io/cri-tools/cmd/crictl"],
                   staging, "-s -w", log,
                   f"CoreDNS {COREDNS_VERSION}, crictl {CRICTL_VERSION}, pause", progress)
        work = Path(tempfile.mkdtemp(prefix=".images-", dir=staging))
        _static_image(staging / "pause", PAUSE_IMAGE, staging / "pause.oci.tar",
                      ("/pause",), work)
        _static_image(staging / "coredns", COREDNS_IMAGE, staging / "coredns.oci.tar",
                      ("/coredns",), work)
        shutil.rmtree(work)

    return NodeAssets(build_cached(cache_root() / "node" / cache_key(mods), _complete, build))
