"""Generated built-in models: import cost, decode rate, and generation time.

Run: ``.venv/bin/python -m bench.models [--runs 5] [--pods 10000] [--skip-generation]``

- import: a fresh interpreter per run imports ``kuar.models.core.v1`` (one group), then every
  generated module (all groups); median wall time of the import and the process's RSS after
  it, against a baseline that imports only ``kuar.resources``.
- decode: 10,000 Pods as a kubelet reports them (containers with probes, volumes, status),
  decoded with the generated ``Pod`` and with the hand-written ``Pod`` kuar had before
  (``bench/models/handwritten.py``): objects/s, best of ``--runs``, from dicts and from bytes.
- generation: starts the local control plane, fetches its OpenAPI v3 and renders the package.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from typing import Any

_PROBE = """
import resource, sys, time, importlib, pkgutil
t = time.perf_counter()
{body}
took = time.perf_counter() - t
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
_CASES = {
    "baseline: kuar.resources": "import kuar.resources",
    "one group: kuar.models.core.v1": "import kuar.resources\nimport kuar.models.core.v1",
    "one kind used: core.v1 + Pod validator": (
        "import kuar.resources\nfrom kuar.models.core.v1 import Pod\nPod.model_rebuild()"),
    "all groups": (
        "import kuar.resources\nimport kuar.models\n"
        "for m in sorted(set(kuar.models.KINDS.values())):\n"
        "    importlib.import_module('kuar.models.' + m)"),
}


def _imports(runs: int) -> list[tuple[str, float, float]]:
    rows = []
    for name, body in _CASES.items():
        times, rss = [], []
        for _ in range(runs):
            out = subprocess.run([sys.executable, "-c", _PROBE.format(body=body)],
                                 capture_output=True, text=True, check=True).stdout.split()
            times.append(float(out[0]) * 1000)
            rss.append(int(out[1]) / 1024)
        rows.append((name, statistics.median(times), statistics.median(rss)))
    return rows


def pod(i: int) -> dict[str, Any]:
    """A Pod the way the API server returns a running one."""
    ts = "2026-11-29T23:37:25Z"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": f"web-7d9c-{i:05d}", "namespace": "shop", "uid": f"uid-{i}",
            "resourceVersion": str(1000 + i), "creationTimestamp": ts,
            "generateName": "web-7d9c-", "labels": {"app": "web", "pod-template-hash": "7d9c"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "web-7d9c", "uid": "rs-uid", "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": {
            "containers": [{
                "name": "web", "image": "example/web:1.2.3", "imagePullPolicy": "IfNotPresent",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": "MODE", "value": "prod"},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {
                            "apiVersion": "v1", "fieldPath": "status.podIP"}}}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http",
                                               "scheme": "HTTP"},
                                   "periodSeconds": 5, "timeoutSeconds": 1,
                                   "successThreshold": 1, "failureThreshold": 3},
                "volumeMounts": [{"name": "kube-api-access", "readOnly": True,
                                  "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }],
            "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt",
                               "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst", "serviceAccountName": "default", "nodeName": "node-1",
            "securityContext": {}, "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": "Running", "hostIP": "10.0.0.5", "podIP": f"10.244.0.{i % 250}",
            "podIPs": [{"ip": f"10.244.0.{i % 250}"}], "startTime": ts, "qosClass": "Burstable",
            "conditions": [{"type": t, "status": "True", "lastProbeTime": None,
                            "lastTransitionTime": ts}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "containerStatuses": [{"name": "web", "ready": True, "restartCount": 0,
                                   "image": "example/web:1.2.3", "imageID": "sha256:abc",
                                   "containerID": "containerd://def", "started": True,
                                   "state": {"running": {"startedAt": ts}}}],
        },
    }


def _decode(pods: list[dict[str, Any]], runs: int) -> list[tuple[str, float]]:
    from bench.models.handwritten import Pod as HandPod
    from kuar.models.core.v1 import Pod

    raw = [json.dumps(p).encode() for p in pods]
    rows = []
    for name, cls in (("generated kuar.models.core.v1.Pod", Pod),
                      ("hand-written Pod (before)", HandPod)):
        cls.model_rebuild()
        for mode in ("dict", "bytes"):
            best = 0.0
            for _ in range(runs):
                started = time.perf_counter()
                if mode == "dict":
                    for p in pods:
                        cls.model_validate(p)
                else:
                    for b in raw:
                        cls.model_validate_json(b)
                best = max(best, len(pods) / (time.perf_counter() - started))
            rows.append((f"{name}, from {mode}", best))
    return rows


def _generation() -> tuple[float, float, int, int, int]:
    from kuar.cli.generate.models import fetch_api
    from kuar.resources.modelgen import render_models
    from kuar.testing import ControlPlane, ControlPlaneSettings

    with ControlPlane(ControlPlaneSettings()) as plane:
        started = time.perf_counter()
        docs, resources, source = asyncio.run(fetch_api(str(plane.kubeconfig)))
        fetched = time.perf_counter()
        files = render_models(docs, resources, source=source)
        rendered = time.perf_counter()
    kinds = files["_kinds.py"].count("): ")
    lines = sum(text.count("\n") for text in files.values())
    return fetched - started, rendered - fetched, kinds, lines, len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--skip-generation", action="store_true")
    args = parser.parse_args()

    print(f"{'import (fresh process, median of ' + str(args.runs) + ')':<48} "
          f"{'ms':>8} {'RSS MiB':>9}")
    for name, ms, rss in _imports(args.runs):
        print(f"{name:<48} {ms:>8.0f} {rss:>9.1f}")
    print()
    print(f"{'decode ' + str(args.pods) + ' Pods (best of ' + str(args.runs) + ')':<48} "
          f"{'objects/s':>18}")
    rows = _decode([pod(i) for i in range(args.pods)], args.runs)
    for name, rate in rows:
        print(f"{name:<48} {rate:>18,.0f}")
    ratio = rows[0][1] / rows[2][1]
    summary = f"decode_ratio_generated_vs_handwritten={ratio:.2f}"
    if not args.skip_generation:
        fetch, render, kinds, lines, files = _generation()
        print()
        print(f"generation: fetch {fetch:.2f} s, render {render:.2f} s; {files} files, "
              f"{kinds} kinds, {lines:,} lines")
        summary += f" generation_s={fetch + render:.2f} kinds={kinds} lines={lines}"
    print(summary)


if __name__ == "__main__":
    main()
