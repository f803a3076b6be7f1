"""A local node: a Node object whose bound Pods run as processes on this machine.

Place in the pipeline: beside the control plane (:mod:`kuar.testing.controlplane`), for
development and tests only. kube-scheduler binds Pods to the Node it registers; it runs them
the way a kubelet would, but as local processes, and only for images it knows (kuar's
load-generator image by default). Known as a "virtual kubelet" elsewhere.

What it does that a kubelet does, so the rest of the control plane behaves:
- registers the Node (capacity, Ready condition, an InternalIP) and renews its Lease in
  ``kube-node-lease`` so the node-lifecycle controller keeps it Ready;
- watches Pods bound to it (``spec.nodeName``), starts each container's process, and reports
  ``pods/status``: phase, podIP, conditions, container states, exit codes, and the termination
  message (the file at ``terminationMessagePath``, at most 4096 bytes; with
  ``FallbackToLogsOnError`` the end of the log when that file is empty and the exit failed);
- on graceful deletion stops the processes (SIGTERM, then SIGKILL after the grace period) and
  confirms the deletion (``gracePeriodSeconds=0``), as a kubelet must or the Pod stays
  Terminating.

Networking without packets to private addresses: the API rejects loopback addresses in
EndpointSlices, and this machine only reaches loopback. Pods get addresses from a private pod
range for the API's sake; nothing is ever sent to them. Instead the node keeps a table
``address:port -> 127.0.0.1:port`` (pods' container ports, and backends registered with
:meth:`LocalNode.expose`) and gives each process the environment variable ``KUAR_RESOLVE``: a
JSON map from every Service name form (``svc``, ``svc.ns``, ``svc.ns.svc``,
``svc.ns.svc.cluster.local``, and the ClusterIP) and port of the Pod's namespace to the local
address of one ready endpoint, the way cluster DNS plus kube-proxy would route it.

Guarantees: a Pod whose image no runner knows ends in phase Failed with reason
``UnsupportedImage`` and a message naming the images it runs. Every process started is stopped
by pid on deletion and on :meth:`LocalNode.stop`.
Caveats: restartPolicy is treated as ``Never`` (no container restarts); the Service map is a
snapshot taken when the Pod starts and uses one endpoint per Service port; no volumes, probes
or resource limits; containers start together (no init containers).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kuar.client import ApiError, Client, Conflict, NotFound, apply_manifests
from kuar.client.transport import MERGE_PATCH
from kuar.models.core.v1 import Pod
from kuar.runtime.watcher import EventType, WatchConfig, watcher
from kuar.testing.process import Process

log = logging.getLogger("kuar.testing.localnode")

LOADGEN_IMAGE = "kuar.dev/loadgen"
"""kuar's load-generator image name (any tag). In a real cluster the image runs
``kuar-loadgen``; on the local node it runs ``python -m kuar_loadgen``."""

# Equal to kuar_loadgen.spec.RESOLVE_ENV; not imported: the toolkit imports no application.
RESOLVE_ENV = "KUAR_RESOLVE"
MAX_TERMINATION_MESSAGE = 4096

PODS = Pod.resource_info()

Runner = Callable[[Mapping[str, Any]], list[str]]
"""Turns a container spec into the argv of the local process that stands for it."""


def loadgen_runner(container: Mapping[str, Any]) -> list[str]:
    """Run kuar's load generator: ``python -m kuar_loadgen`` plus the container's args."""
    return [sys.executable, "-m", "kuar_loadgen", *(container.get("args") or [])]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_micro() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, kw_only=True)
class LocalNodeSettings:
    """How the local node presents itself."""

    name: str = "kuar-local-node"
    """Node name; Pods bound to it (``spec.nodeName``) run here."""
    pod_cidr: str = "10.244.0.0/24"
    """Addresses handed to Pods for the API's sake only: nothing is sent to them."""
    cpu: str = "2"
    """Advertised CPU capacity: this machine's 2 cores."""
    memory: str = "8Gi"
    """Advertised memory: a share of this machine, enough for load-generator pods."""
    max_pods: int = 110
    """The kubelet's default pod limit."""
    lease_duration: int = 40
    """Node lease length in seconds (the kubelet's default)."""
    renew_interval: float = 10.0
    """Lease renewal period (the kubelet renews every 10 s)."""
    runners: Mapping[str, Runner] = field(
        default_factory=lambda: {LOADGEN_IMAGE: loadgen_runner}
    )
    """Image name (without tag) -> how to run it locally."""
    root_dir: Path | None = None
    """Parent folder for the node's temporary folder; ``None`` uses the system one."""


@dataclass
class _RunningPod:
    uid: str
    namespace: str
    name: str
    ip: str
    started: str
    workdir: Path
    processes: dict[str, Process] = field(default_factory=dict)
    message_files: dict[str, Path] = field(default_factory=dict)
    fallback_to_logs: dict[str, bool] = field(default_factory=dict)
    monitor: asyncio.Task[None] | None = None
    grace: float = 30.0


def _image_name(image: str) -> str:
    """``registry/name:tag@digest`` -> ``registry/name``."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


class LocalNode:
    """Registers a Node and runs the Pods bound to it as local processes.

    ``async with LocalNode(client) as node:`` or ``await node.start()`` / ``await node.stop()``.
    """

    def __init__(self, client: Client, settings: LocalNodeSettings | None = None) -> None:
        """Prepare the node; nothing is registered until :meth:`start`."""
        self.client = client
        self.settings = settings or LocalNodeSettings()
        network = ipaddress.ip_network(self.settings.pod_cidr)
        hosts = network.hosts()
        self.node_ip = str(next(hosts))
        self._free_ips = [str(ip) for ip in hosts]
        self._routes: dict[str, str] = {}
        self._pods: dict[str, _RunningPod] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._root: Path | None = None
        self._ready = asyncio.Event()

    # --- public ------------------------------------------------------------------------
    def expose(self, address: str, port: int, local_port: int) -> None:
        """Route ``address:port`` (e.g. an EndpointSlice address) to ``127.0.0.1:local_port``."""
        self._routes[f"{address}:{port}"] = f"127.0.0.1:{local_port}"

    def allocate_address(self) -> str:
        """A free address of the pod range, e.g. for a backend registered with :meth:`expose`."""
        return self._free_ips.pop(0)

    async def publish(
        self, namespace: str, name: str, local_port: int, *, port: int = 80,
        target_port: int = 8080, port_name: str = "http", field_manager: str = "kuar-localnode",
    ) -> None:
        """Publish a process on ``127.0.0.1:local_port`` as Service ``namespace/name``.

        A selector-less Service (port ``port``), an EndpointSlice with one address of the pod
        range, and the node's route from that address to the local port.
        """
        address = self.allocate_address()
        self.expose(address, target_port, local_port)
        await apply_manifests(self.client, [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
             "spec": {"ports": [{"name": port_name, "port": port, "targetPort": target_port}]}},
            {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
             "metadata": {"name": f"{name}-local",
                          "labels": {"kubernetes.io/service-name": name}},
             "addressType": "IPv4",
             "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
             "ports": [{"name": port_name, "port": target_port, "protocol": "TCP"}]},
        ], namespace=namespace, field_manager=field_manager)

    @property
    def name(self) -> str:
        """The Node's name."""
        return self.settings.name

    async def __aenter__(self) -> LocalNode:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Register the Node and its Lease, then run Pods until :meth:`stop`."""
        self._root = Path(tempfile.mkdtemp(prefix="kuar-node-", dir=self.settings.root_dir))
        await self._register()
        self._tasks = [
            asyncio.create_task(self._renew_forever(), name="localnode-lease"),
            asyncio.create_task(self._run_pods(), name="localnode-pods"),
        ]
        await self._ready.wait()

    async def stop(self) -> None:
        """Stop every process this node started and its background tasks; remove its folder."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for pod in list(self._pods.values()):
            if pod.monitor is not None:
                pod.monitor.cancel()
            for process in pod.processes.values():
                await asyncio.to_thread(process.stop, 5.0)
        self._pods.clear()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    # --- node and lease ----------------------------------------------------------------
    def _node_status(self) -> dict[str, Any]:
        s = self.settings
        now = _now()
        resources = {"cpu": s.cpu, "memory": s.memory, "pods": str(s.max_pods)}
        ready = {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "message": "kuar local node is ready", "lastHeartbeatTime": now,
                 "lastTransitionTime": now}
        return {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [ready] + [
                {"type": t, "status": "False", "reason": f"KubeletHas{r}",
                 "lastHeartbeatTime": now, "lastTransitionTime": now}
                for t, r in (("MemoryPressure", "SufficientMemory"),
                             ("DiskPressure", "NoDiskPressure"), ("PIDPressure", "SufficientPID"))
            ],
            "addresses": [{"type": "InternalIP", "address": self.node_ip},
                          {"type": "Hostname", "address": s.name}],
            "nodeInfo": {
                "kubeletVersion": "v1.36.3-kuar-local", "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": "amd64",
                "containerRuntimeVersion": "kuar-local://0.1", "osImage": "kuar local node",
                "kernelVersion": "", "machineID": "", "systemUUID": "", "bootID": "",
            },
        }

    async def _register(self) -> None:
        s = self.settings
        node = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": s.name, "labels": {
                "kubernetes.io/hostname": s.name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "kuar.dev/local-node": "true"}},
            "spec": {"podCIDR": s.pod_cidr, "podCIDRs": [s.pod_cidr]},
        }
        try:
            created = await self.client.request("POST", "/api/v1/nodes", body=node)
        except Conflict:
            created = await self.client.request("GET", f"/api/v1/nodes/{s.name}")
        self._node_uid = created["metadata"]["uid"]
        await self.client.request(
            "PATCH", f"/api/v1/nodes/{s.name}/status",
            body={"status": self._node_status()}, content_type=MERGE_PATCH,
        )
        await self._renew_lease()

    async def _renew_lease(self) -> None:
        s = self.settings
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        spec = {"holderIdentity": s.name, "leaseDurationSeconds": s.lease_duration,
                "renewTime": _now_micro()}
        try:
            await self.client.request(
                "PATCH", f"{path}/{s.name}", body={"spec": spec}, content_type=MERGE_PATCH
            )
        except NotFound:
            await self.client.request("POST", path, body={
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": s.name, "ownerReferences": [{
                    "apiVersion": "v1", "kind": "Node", "name": s.name,
                    "uid": self._node_uid}]},
                "spec": spec,
            })

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.renew_interval)
            try:
                await self._renew_lease()
            except (ApiError, OSError) as exc:  # the API server may be restarting
                log.warning("lease renewal failed: %s", exc)

    # --- pods --------------------------------------------------------------------------
    async def _run_pods(self) -> None:
        events = watcher(
            self.client, PODS, WatchConfig(field_selector=f"spec.nodeName={self.settings.name}"),
            decode=lambda raw: raw,
        )
        async for event in events:
            if event.type is EventType.INIT_DONE:
                self._ready.set()
            if event.object is None:
                continue
            pod: dict[str, Any] = event.object
            try:
                if event.type is EventType.DELETE:
                    await self._forget(pod["metadata"]["uid"])
                elif event.type in (EventType.APPLY, EventType.INIT_APPLY):
                    await self._sync(pod)
            except (ApiError, OSError) as exc:
                meta = pod["metadata"]
                log.warning("pod %s/%s: %s", meta.get("namespace"), meta.get("name"), exc)

    async def _sync(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        phase = (pod.get("status") or {}).get("phase")
        if meta.get("deletionTimestamp"):
            await self._terminate(pod)
            return
        if uid in self._pods or phase in ("Succeeded", "Failed"):
            return
        await self._start_pod(pod)

    async def _terminate(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        running = self._pods.get(meta["uid"])
        if running is not None:
            grace = float(meta.get("deletionGracePeriodSeconds") or running.grace)
            if running.monitor is not None:
                running.monitor.cancel()
            for process in running.processes.values():
                await asyncio.to_thread(process.stop, min(grace, 30.0))
        with contextlib.suppress(NotFound, Conflict):
            await self.client.request(
                "DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
            )
        await self._forget(meta["uid"])

    async def _forget(self, uid: str) -> None:
        running = self._pods.pop(uid, None)
        if running is None:
            return
        if running.monitor is not None:
            running.monitor.cancel()
        for process in running.processes.values():
            await asyncio.to_thread(process.stop, 5.0)
        for key in [k for k, v in self._routes.items() if k.startswith(f"{running.ip}:")]:
            del self._routes[key]
        self._free_ips.append(running.ip)
        shutil.rmtree(running.workdir, ignore_errors=True)

    async def _patch_status(self, pod: Mapping[str, Any], status: dict[str, Any]) -> None:
        meta = pod["metadata"]
        await self.client.request(
            "PATCH", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
            body={"metadata": {"uid": meta["uid"]}, "status": status}, content_type=MERGE_PATCH,
        )

    def _runner_for(self, image: str) -> Runner | None:
        return self.settings.runners.get(_image_name(image))

    async def _start_pod(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        containers: list[dict[str, Any]] = spec.get("containers") or []
        unknown = [c["image"] for c in containers if self._runner_for(c.get("image", "")) is None]
        now = _now()
        if unknown:
            known = ", ".join(sorted(self.settings.runners)) or "(none)"
            message = (f"kuar's local node runs only the images {known}; "
                       f"cannot run {', '.join(unknown)}")
            await self._patch_status(pod, {
                "phase": "Failed", "reason": "UnsupportedImage", "message": message,
                "hostIP": self.node_ip, "startTime": now,
                "containerStatuses": [{
                    "name": c["name"], "image": c.get("image", ""), "imageID": "",
                    "ready": False, "restartCount": 0,
                    "state": {"terminated": {
                        "exitCode": 128, "reason": "UnsupportedImage", "message": message,
                        "startedAt": now, "finishedAt": now}},
                } for c in containers],
            })
            return
        assert self._root is not None
        if not self._free_ips:
            await self._patch_status(pod, {
                "phase": "Failed", "reason": "OutOfAddresses",
                "message": f"the local node's pod range {self.settings.pod_cidr} is used up",
            })
            return
        ip = self._free_ips.pop(0)
        running = _RunningPod(
            uid=meta["uid"], namespace=meta["namespace"], name=meta["name"], ip=ip,
            started=now,
            workdir=self._root / meta["namespace"] / f"{meta['name']}-{meta['uid'][:8]}",
            grace=float(spec.get("terminationGracePeriodSeconds") or 30),
        )
        self._pods[meta["uid"]] = running
        resolve = await self._resolve_map(meta["namespace"])
        for container in containers:
            runner = self._runner_for(container["image"])
            assert runner is not None
            workdir = running.workdir / container["name"]
            workdir.mkdir(parents=True, exist_ok=True)
            message_file = workdir / "termination-log"
            message_file.write_text("")
            declared = container.get("terminationMessagePath") or "/dev/termination-log"
            # The kubelet mounts a host file at terminationMessagePath; here the process gets
            # the local file's path wherever the declared path appears in its args or env.
            argv = [a.replace(declared, str(message_file)) for a in runner(container)]
            env = self._environment(pod, container, ip, resolve)
            env = {k: v.replace(declared, str(message_file)) for k, v in env.items()}
            process = Process(container["name"], argv, workdir, env=env)
            process.start()
            running.processes[container["name"]] = process
            running.message_files[container["name"]] = message_file
            running.fallback_to_logs[container["name"]] = (
                container.get("terminationMessagePolicy") == "FallbackToLogsOnError"
            )
        await self._patch_status(pod, self._running_status(pod, running))
        running.monitor = asyncio.create_task(self._monitor(pod, running))

    def _running_status(self, pod: Mapping[str, Any], running: _RunningPod) -> dict[str, Any]:
        conditions = [
            {"type": t, "status": "True", "lastTransitionTime": running.started}
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        return {
            "phase": "Running", "hostIP": self.node_ip, "podIP": running.ip,
            "podIPs": [{"ip": running.ip}], "startTime": running.started,
            "conditions": conditions,
            "containerStatuses": [{
                "name": c["name"], "image": c["image"], "imageID": "", "ready": True,
                "started": True, "restartCount": 0,
                "containerID": f"kuar-local://{running.processes[c['name']].pid}",
                "state": {"running": {"startedAt": running.started}},
            } for c in pod["spec"]["containers"]],
        }

    async def _monitor(self, pod: Mapping[str, Any], running: _RunningPod) -> None:
        exits: dict[str, tuple[int, str]] = {}
        while len(exits) < len(running.processes):
            await asyncio.sleep(0.1)
            for name, process in running.processes.items():
                code = process.exit_code()
                if code is not None and name not in exits:
                    exits[name] = (code, _now())
        statuses = []
        for container in pod["spec"]["containers"]:
            name = container["name"]
            code, finished = exits[name]
            message = self._termination_message(running, name, code)
            terminated: dict[str, Any] = {
                "exitCode": code, "reason": "Completed" if code == 0 else "Error",
                "startedAt": running.started, "finishedAt": finished,
                "containerID": f"kuar-local://{running.processes[name].pid}",
            }
            if message:
                terminated["message"] = message
            statuses.append({
                "name": name, "image": container["image"], "imageID": "", "ready": False,
                "started": False, "restartCount": 0, "state": {"terminated": terminated},
            })
        failed = any(code != 0 for code, _ in exits.values())
        conditions = [
            {"type": "Ready", "status": "False", "reason": "PodCompleted",
             "lastTransitionTime": _now()},
            {"type": "ContainersReady", "status": "False", "reason": "PodCompleted",
             "lastTransitionTime": _now()},
        ]
        try:
            await self._patch_status(pod, {
                "phase": "Failed" if failed else "Succeeded", "conditions": conditions,
                "containerStatuses": statuses,
            })
        except (ApiError, OSError) as exc:
            log.warning("pod %s/%s: final status not written: %s",
                        running.namespace, running.name, exc)

    @staticmethod
    def _termination_message(running: _RunningPod, name: str, code: int) -> str:
        data = running.message_files[name].read_bytes()[:MAX_TERMINATION_MESSAGE]
        if not data and code != 0 and running.fallback_to_logs[name]:
            # the kubelet's FallbackToLogsOnError: the last 80 lines, at most 2048 bytes
            tail = running.processes[name].log_tail(80).encode()
            data = tail[-2048:]
        return data.decode(errors="replace")

    def _environment(
        self, pod: Mapping[str, Any], container: Mapping[str, Any], ip: str,
        resolve: Mapping[str, str],
    ) -> dict[str, str]:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOSTNAME": pod["metadata"]["name"],
            "PYTHONUNBUFFERED": "1",
            RESOLVE_ENV: json.dumps(dict(resolve), separators=(",", ":")),
        }
        for var in container.get("env") or []:
            if "value" in var:
                env[var["name"]] = str(var["value"])
            elif (var.get("valueFrom") or {}).get("fieldRef"):
                env[var["name"]] = _field_ref(
                    pod, var["valueFrom"]["fieldRef"]["fieldPath"], ip, self.node_ip
                )
        return env

    async def _resolve_map(self, namespace: str) -> dict[str, str]:
        local = dict(self._routes)
        services = await self.client.request("GET", f"/api/v1/namespaces/{namespace}/services")
        slices = await self.client.request(
            "GET", f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
        )
        by_service: dict[str, list[dict[str, Any]]] = {}
        for item in slices.get("items", []):
            owner = (item["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
            if owner:
                by_service.setdefault(owner, []).append(item)
        result: dict[str, str] = {}
        for svc in services.get("items", []):
            name = svc["metadata"]["name"]
            cluster_ip = svc["spec"].get("clusterIP")
            for port in svc["spec"].get("ports") or []:
                target = _endpoint_for(by_service.get(name, []), port, local)
                if target is None:
                    continue
                hosts = [name, f"{name}.{namespace}", f"{name}.{namespace}.svc",
                         f"{name}.{namespace}.svc.cluster.local"]
                if cluster_ip and cluster_ip != "None":
                    hosts.append(cluster_ip)
                for host in hosts:
                    result[f"{host}:{port['port']}"] = target
        return result


def _endpoint_for(
    slices: list[dict[str, Any]], service_port: Mapping[str, Any], local: Mapping[str, str]
) -> str | None:
    """The local address of the first ready endpoint serving ``service_port``."""
    for item in slices:
        for port in item.get("ports") or []:
            if (port.get("name") or "") != (service_port.get("name") or ""):
                continue
            for endpoint in item.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for address in endpoint.get("addresses") or []:
                    mapped = local.get(f"{address}:{port.get('port')}")
                    if mapped:
                        return mapped
    return None


def _field_ref(pod: Mapping[str, Any], path: str, ip: str, host_ip: str) -> str:
    """The downward API: the fieldRef paths a kubelet resolves for env variables."""
    meta = pod["metadata"]
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
        "status.podIP": ip,
        "status.hostIP": host_ip,
    }
    if path in simple:
        return str(simple[path])
    for prefix, source in (("metadata.annotations", "annotations"), ("metadata.labels", "labels")):
        if path.startswith(f"{prefix}['") and path.endswith("']"):
            return str((meta.get(source) or {}).get(path[len(prefix) + 2 : -2], ""))
    return ""
