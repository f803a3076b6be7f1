"""Start-to-ready time of the local control plane (warm, and optionally cold) and steady RSS.

Run: ``.venv/bin/python -m bench.controlplane [--runs 5] [--settle 10] [--cold]
[--real-node [--image-dir build/images]]``

- warm: binaries cached; each run starts etcd + kube-apiserver and stops when ``/readyz``
  answers 200 (and again with controller-manager and scheduler healthy as well).
- cold (``--cold``): builds every binary into a fresh cache with an empty Go build cache
  (modules already downloaded are reused), timing ``kuar controlplane install``: minutes.
- RSS: VmRSS of each process after ``--settle`` seconds idle, read from /proc.
- real node (``--real-node``, root and ``make node-tools``): start of the real node on a running
  control plane until the Node is Ready and CoreDNS answers (with the images of ``--image-dir``
  imported, if given; the import is also shown alone), and the steady RSS of its processes
  (containerd, kubelet, kube-proxy, the API-server relay; containers not included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kuar.testing import ControlPlane, ControlPlaneSettings, install
from kuar.testing.realnode import RealNode, RealNodeSettings, image_archives, plane_settings
from kuar.testing.realnode import install as install_node


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _time_start(settings: ControlPlaneSettings) -> float:
    plane = ControlPlane(settings)
    started = time.perf_counter()
    plane.start()
    elapsed = time.perf_counter() - started
    plane.stop()
    return elapsed


def _cold() -> float:
    with tempfile.TemporaryDirectory(prefix="kuar-cold-") as tmp:
        env = {**os.environ, "KUAR_CACHE_DIR": f"{tmp}/cache", "GOCACHE": f"{tmp}/gocache"}
        env.pop("KUBEBUILDER_ASSETS", None)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "kuar.cli", "controlplane", "install"], env=env, check=True,
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - started


def _real_node(runs: int, settle: float, image_dir: Path | None
               ) -> tuple[list[tuple[str, str]], str]:
    install_node()
    images = image_archives(image_dir) if image_dir else ()
    plane = ControlPlane(plane_settings())
    plane.start()
    rows: list[tuple[str, str]] = []
    try:
        starts, imports, rss = [], [], 0
        for run in range(runs):
            node = RealNode(plane, RealNodeSettings(images=images))
            try:
                node.start()
                starts.append(node.times.total)
                imports.append(dict(node.times.steps)["import images"])
                if run == runs - 1:
                    time.sleep(settle)
                    for name, kib in node.rss_kib().items():
                        rss += kib
                        rows.append((f"real node steady RSS {name} (after {settle:.0f} s idle)",
                                     f"{kib / 1024:.0f} MiB"))
            finally:
                node.stop()
        label = f"with {len(images)} project images" if images else "pause + CoreDNS only"
        rows.insert(0, (f"real node start to Ready + CoreDNS, {label} (n={runs})",
                        f"median {statistics.median(starts):.2f} s, min {min(starts):.2f}, "
                        f"max {max(starts):.2f}"))
        rows.insert(1, ("  of which image import (ctr images import)",
                        f"median {statistics.median(imports):.2f} s"))
        rows.append(("real node steady RSS, all node processes", f"{rss / 1024:.0f} MiB"))
    finally:
        plane.stop()
    return rows, (f" real_node_start_s={statistics.median(starts):.2f}"
                  f" real_node_rss_mib={rss / 1024:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--cold", action="store_true", help="also time a cold build (minutes)")
    parser.add_argument("--real-node", action="store_true",
                        help="also start the real node (root, make node-tools)")
    parser.add_argument("--image-dir", type=Path, default=None,
                        help="with --real-node: import the images of this kuar image build")
    args = parser.parse_args()

    install()
    rows: list[tuple[str, str]] = []
    cold = _cold() if args.cold else None
    if cold is not None:
        rows.append(("cold build (kuar controlplane install, empty GOCACHE)", f"{cold:.0f} s"))

    minimal = [_time_start(ControlPlaneSettings()) for _ in range(args.runs)]
    full = [
        _time_start(ControlPlaneSettings(with_controller_manager=True, with_scheduler=True))
        for _ in range(args.runs)
    ]
    for label, values in (
        ("etcd + kube-apiserver", minimal), ("+ controller-manager + scheduler", full)
    ):
        median, low, high = statistics.median(values), min(values), max(values)
        rows.append((
            f"warm start to ready, {label} (n={len(values)})",
            f"median {median:.2f} s, min {low:.2f}, max {high:.2f}",
        ))

    plane = ControlPlane(ControlPlaneSettings(with_controller_manager=True, with_scheduler=True))
    plane.start()
    try:
        time.sleep(args.settle)
        total = 0
        for name, proc in plane.processes.items():
            assert proc.pid is not None
            rss = _rss_kib(proc.pid)
            total += rss
            rows.append(
                (f"steady RSS {name} (after {args.settle:.0f} s idle)", f"{rss / 1024:.0f} MiB")
            )
        rows.append(("steady RSS, all control-plane processes", f"{total / 1024:.0f} MiB"))
    finally:
        plane.stop()
    real_part = ""
    if args.real_node:
        real_rows, real_part = _real_node(args.runs, args.settle, args.image_dir)
        rows += real_rows

    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  value")
    print(f"{'-' * width}  -----")
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
    cold_part = f"cold_build_s={cold:.0f} " if cold is not None else ""
    print(
        f"{cold_part}warm_start_s={statistics.median(minimal):.2f} "
        f"warm_start_full_s={statistics.median(full):.2f} rss_mib={total / 1024:.0f}"
        f"{real_part}"
    )


if __name__ == "__main__":
    main()
