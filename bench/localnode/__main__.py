"""Pod start on the process node (``kuar.testing.localnode``), by the volumes a Pod has.

Run: ``.venv/bin/python -m bench.localnode [--pods 20]``

A control plane with the controller-manager (ServiceAccounts, ``kube-root-ca.crt``, the
ServiceAccount admission plugin) and a local node whose only runner is ``/bin/sleep``. For
each variant, ``--pods`` Pods are created one after another, each bound to the node directly
(``spec.nodeName``: no scheduler in the measurement), and the time from the create request to
a watch event showing the Pod ``Running`` is taken:

- ``none``: ``automountServiceAccountToken: false``, no volume (the node before volumes);
- ``kube-api-access``: the projected volume the ServiceAccount plugin adds to every Pod
  (a TokenRequest, the ``kube-root-ca.crt`` ConfigMap, the namespace);
- ``configmap+secret``: a 64 KiB ConfigMap volume and a Secret volume, no token.

Prints a table (median, p90 and max per variant) and a last line of key=value.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kuar.client import Client, load_config
from kuar.testing import ControlPlane, ControlPlaneSettings, eventually_async, install
from kuar.testing.localnode import CommandRunner, LocalNode, LocalNodeSettings

IMAGE = "bench.test/sleep"
NAMESPACE = "bench-localnode"


def _sleep(container: Mapping[str, Any]) -> list[str]:
    return ["/bin/sleep", "60"]


def _spec(variant: str, node: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": node, "restartPolicy": "Never",
                            "terminationGracePeriodSeconds": 0,
                            "containers": [{"name": "main", "image": IMAGE}]}
    if variant == "none":
        spec["automountServiceAccountToken"] = False
    elif variant == "configmap+secret":
        spec["automountServiceAccountToken"] = False
        spec["volumes"] = [{"name": "body", "configMap": {"name": "body"}},
                           {"name": "creds", "secret": {"secretName": "creds"}}]
        spec["containers"][0]["volumeMounts"] = [
            {"name": "body", "mountPath": "/etc/body"}, {"name": "creds", "mountPath": "/creds"}]
    return spec


def _getter(client: Client, path: str) -> Callable[[], Awaitable[Any]]:
    async def get() -> Any:
        return await client.request("GET", path)

    return get


async def _watch_running(client: Client, running: dict[str, asyncio.Event]) -> None:
    async for line in client.stream(f"/api/v1/namespaces/{NAMESPACE}/pods",
                                    params={"watch": "1"}):
        pod = line.get("object") or {}
        name = (pod.get("metadata") or {}).get("name", "")
        if (pod.get("status") or {}).get("phase") == "Running" and name in running:
            running[name].set()


async def _variant(client: Client, node: str, variant: str, pods: int) -> list[float]:
    running = {f"{variant.replace('+', '-')}-{i}": asyncio.Event() for i in range(pods)}
    watch = asyncio.create_task(_watch_running(client, running))
    await asyncio.sleep(0.5)  # the watch is open before the first create
    times = []
    try:
        for name, seen in running.items():
            started = time.perf_counter()
            await client.request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", body={
                "metadata": {"name": name}, "spec": _spec(variant, node)})
            await asyncio.wait_for(seen.wait(), timeout=60)
            times.append(time.perf_counter() - started)
    finally:
        watch.cancel()
        for name in running:
            await client.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}",
                                 params={"gracePeriodSeconds": "0"})
    return times


async def _run(plane: ControlPlane, pods: int) -> dict[str, list[float]]:
    client = Client(await load_config(plane.kubeconfig))
    node = LocalNode(client, LocalNodeSettings(
        name="bench-node", runners={IMAGE: CommandRunner(command=_sleep)}))
    try:
        await client.request("POST", "/api/v1/namespaces", body={"metadata": {"name": NAMESPACE}})
        for kind in ("serviceaccounts/default", "configmaps/kube-root-ca.crt"):
            await eventually_async(_getter(client, f"/api/v1/namespaces/{NAMESPACE}/{kind}"),
                                   timeout=30)
        await client.request("POST", f"/api/v1/namespaces/{NAMESPACE}/configmaps", body={
            "metadata": {"name": "body"}, "data": {"body.json": "x" * 65536}})
        await client.request("POST", f"/api/v1/namespaces/{NAMESPACE}/secrets", body={
            "metadata": {"name": "creds"}, "stringData": {"password": "bench"}})
        await node.start()
        await _variant(client, node.name, "none", 2)  # warm-up: first process, first requests
        return {variant: await _variant(client, node.name, variant, pods)
                for variant in ("none", "kube-api-access", "configmap+secret")}
    finally:
        await node.stop()
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=20, help="pods per variant")
    args = parser.parse_args()
    install()
    with ControlPlane(ControlPlaneSettings(with_controller_manager=True)) as plane:
        results = asyncio.run(_run(plane, args.pods))
    print(f"{'variant':<18} {'pods':>5} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}")
    medians = {}
    for variant, times in results.items():
        ms = sorted(t * 1000 for t in times)
        medians[variant] = statistics.median(ms)
        p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
        print(f"{variant:<18} {len(ms):>5} {medians[variant]:>10.1f} {p90:>8.1f} {ms[-1]:>8.1f}")
    print(f"none_ms={medians['none']:.1f} api_access_ms={medians['kube-api-access']:.1f} "
          f"configmap_secret_ms={medians['configmap+secret']:.1f} "
          f"api_access_vs_none={medians['kube-api-access'] / medians['none']:.2f}")


if __name__ == "__main__":
    main()
