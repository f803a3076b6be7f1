"""Pods as processes: start and stop them, read termination messages, report ``pods/status``.

Place in the pipeline: started by :class:`~kuar.testing.localnode.LocalNode` after the Node is
registered (:mod:`.node`). Watches the Pods bound to the node (``spec.nodeName``, bound by
kube-scheduler), runs each container as a local process through the application's runner
(:data:`~kuar.testing.localnode.settings.Runner`), takes pod addresses and the Service map
from :mod:`.routing`, and writes ``pods/status`` as a kubelet would, so the Job controller
and the application's own controllers see real phases, exit codes and messages.

Guarantees:
- a pod spec chooses nothing on this machine beyond what its runner
  (:class:`~kuar.testing.localnode.settings.Runner`) allows: before any process starts, every
  container is checked, and the Pod ends in phase Failed, with nothing started, with reason
  ``ForbiddenArgs`` (a flag not in ``allowed_flags``, or a ``path_flags`` value outside the
  pod's own folder), ``ForbiddenEnv`` (an env name not in ``allowed_env``, such as ``PATH``,
  ``PYTHONPATH`` or ``PYTHONSTARTUP``) or ``ForbiddenPath`` (a ``terminationMessagePath`` that
  is not a plain absolute path: relative, or with ``..``, or such a ``mountPath``/``subPath``),
  or ``UnsupportedVolume`` (a volume other than configMap, secret, projected, downwardAPI and
  emptyDir: see :mod:`.volumes`), and a message naming the offender;
  the process's environment is the node's (``PATH``, ``HOSTNAME``, ``PYTHONUNBUFFERED``, the
  Service map, and the in-cluster ``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT``:
  the API server's address this node's client uses, as a kubelet derives them from the
  ``kubernetes`` Service) plus the allowed names, and the node's own values win;
- volumes (:mod:`.volumes`) are files in the pod's folder, written before its processes start
  and removed when they have all exited (and on deletion and :meth:`PodRunner.stop_all`); every
  ``mountPath`` of a container that appears in its args or env values is rewritten to the
  local folder (the runner's own argv parts are not touched);
- a volume that cannot be set up yet (a missing non-``optional`` ConfigMap, Secret or key, a
  missing ServiceAccount, an API error) keeps the Pod ``Pending`` with its containers waiting
  as ``ContainerCreating`` and the reason in their ``waiting.message`` and in
  ``status.message`` (``MountVolume.SetUp failed for volume "x" : configmap "y" not found``),
  with a Warning Event ``FailedMount``, as a kubelet does; the node tries again (0.5 s,
  doubling to 5 s) until it can or the pod is deleted;
- a Pod whose image no runner knows ends in phase Failed with reason ``UnsupportedImage`` and
  a message naming the images the node runs (or saying that no runner is configured);
- a runner's program that cannot be started (``OSError``) fails the Pod with ``StartError``
  naming the container, and what was started for it is stopped and removed;
- ``pods/status`` carries phase, podIP, conditions, container states, exit codes, and the
  termination message (the file at ``terminationMessagePath``, at most 4096 bytes; with
  ``FallbackToLogsOnError`` the end of the log when that file is empty and the exit failed);
- on graceful deletion the processes are stopped (SIGTERM, then SIGKILL after the grace
  period) and the deletion is confirmed (``gracePeriodSeconds=0``), as a kubelet must or the
  Pod stays Terminating;
- every process started is stopped with its process group (its children too) on deletion and
  on :meth:`PodRunner.stop_all`.
Env ``valueFrom`` ``configMapKeyRef``/``secretKeyRef`` are read from the API when the pod
starts (a missing one fails the pod as ``CreateContainerConfigError``, naming the reference).
The node's client reads the ConfigMaps and Secrets its pods name, requests their tokens
(``serviceaccounts/token``) and writes Events, so it needs those rights (kuar's tests and demo
use the admin), as a kubelet has them through the Node authorizer.

Caveats: restartPolicy is treated as ``Never`` (no container restarts); no probes or resource
limits; the volume caveats of :mod:`.volumes` (a snapshot, files found only through rewritten
paths); containers start together (no init containers). Pods are handled in their
JSON form: runners receive the container's JSON and downward-API ``fieldRef`` paths are JSON
paths.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import shutil
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kuar.client import Api, ApiError, Client, Conflict, NotFound, TransportError
from kuar.models.core.v1 import Pod
from kuar.runtime.recorder import WARNING, EventRecorder, RecorderSettings
from kuar.runtime.watcher import EventType, WatchConfig, watcher
from kuar.testing.localnode.node import now
from kuar.testing.localnode.routing import Routing
from kuar.testing.localnode.settings import LocalNodeSettings, Runner, runner_for
from kuar.testing.localnode.volumes import (
    VOLUMES_DIR,
    MountPending,
    PathRewriter,
    PodVolumes,
    Refused,
    container_mounts,
    field_ref,
    is_plain_absolute,
    plan_volumes,
)
from kuar.testing.process import Process

log = logging.getLogger("kuar.testing.localnode")

MAX_TERMINATION_MESSAGE = 4096
FINAL_STATUS_ATTEMPTS = 40
"""How often a pod's final status is tried (0.5 s doubling to 5 s: about three minutes)."""
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
EVENT_CONTROLLER = "kuar.dev/local-node"
"""``reportingController`` of the node's Events (a kubelet's are ``kubelet``)."""
RETRY_FIRST = 0.5
"""Seconds before a pod waiting for its volumes is tried again; doubled up to RETRY_MAX."""
RETRY_MAX = 5.0


def check_container(runner: Runner, container: Mapping[str, Any], workdir: Path,
                    rewrite: Callable[[str], str] = str) -> None:
    """Raise :class:`Refused` unless ``container`` stays within ``runner``'s allow-lists.

    ``workdir`` is the container's folder inside the pod's folder; files named by
    ``path_flags`` must resolve inside the pod's folder (``workdir.parent``) once ``rewrite``
    (the container's mount paths -> local folders) and the termination path are applied.
    """
    name = container.get("name", "")
    declared = container.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH
    if not is_plain_absolute(declared):
        raise Refused("ForbiddenPath", f"container {name}: terminationMessagePath {declared!r} "
                      "must be a plain absolute file path (no '..', '.' or '//')")
    pod_dir = os.path.realpath(workdir.parent)
    message_file = str(workdir / "termination-log")
    args = [str(a) for a in container.get("args") or []]
    for i, arg in enumerate(args):
        if not arg.startswith("-"):
            continue
        flag, eq, value = arg.partition("=")
        if flag not in runner.allowed_flags and flag not in runner.path_flags:
            raise Refused("ForbiddenArgs", f"container {name}: flag {flag} is not allowed; "
                          f"allowed: {', '.join(sorted(runner.allowed_flags | runner.path_flags))}"
                          if runner.allowed_flags or runner.path_flags
                          else f"container {name}: flag {flag} is not allowed (no flags are)")
        if flag in runner.path_flags:
            if not eq:
                if i + 1 >= len(args):
                    raise Refused("ForbiddenArgs", f"container {name}: {flag} needs a file")
                value = args[i + 1]
            local = rewrite(value).replace(declared, message_file)
            path = os.path.realpath(os.path.join(workdir, local))
            if os.path.commonpath([pod_dir, path]) != pod_dir:
                raise Refused("ForbiddenArgs", f"container {name}: {flag} {value!r} is outside "
                              "the pod's own folder")
    for var in container.get("env") or []:
        env_name = str(var.get("name", ""))
        if env_name not in runner.allowed_env:
            allowed = ", ".join(sorted(runner.allowed_env)) or "none"
            raise Refused("ForbiddenEnv", f"container {name}: env {env_name} is not allowed; "
                          f"allowed: {allowed}")


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
    volumes: PodVolumes | None = None
    tokens: asyncio.Task[None] | None = None

    def end_volumes(self) -> None:
        """Stop refreshing tokens and remove the volume files (the pod has ended)."""
        if self.tokens is not None:
            self.tokens.cancel()
        if self.volumes is not None:
            self.volumes.remove()


@dataclass
class _Waiting:
    """A pod whose volumes cannot be set up yet: retried until they can, or it is deleted."""

    message: str
    """Why the pod waits."""
    shown: str
    """The reason the pod's status shows ("" until a status was written)."""
    delay: float
    """Seconds before the next attempt."""
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class _Prepared:
    """What a pod's checks produced: each container's mount rewriter, and its volumes."""

    rewriters: dict[str, PathRewriter]
    volumes: PodVolumes


def _kubernetes_service(server: str) -> dict[str, str]:
    """The in-cluster environment a kubelet derives from the ``kubernetes`` Service."""
    url = urllib.parse.urlsplit(server)
    port = url.port or (443 if url.scheme == "https" else 80)
    return {"KUBERNETES_SERVICE_HOST": url.hostname or "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(port)}


class PodRunner:
    """Runs the Pods bound to one node as processes in ``root`` and reports their status."""

    def __init__(self, client: Client, settings: LocalNodeSettings, routing: Routing,
                 root: Path) -> None:
        """Nothing runs until :meth:`run`."""
        self.client = client
        self.settings = settings
        self.routing = routing
        self.node_ip = routing.addresses.node_ip
        self.root = root
        self.ready = asyncio.Event()
        """Set once the first list of the node's Pods has been handled."""
        self._api = Api(client, Pod, field_manager="kuar-localnode")
        self._pods: dict[str, _RunningPod] = {}
        self._waiting: dict[str, _Waiting] = {}
        self._service_env = _kubernetes_service(client.config.server)
        self._recorder = EventRecorder(client, RecorderSettings(
            controller=EVENT_CONTROLLER, instance=settings.name))

    async def run(self) -> None:
        """Follow the node's Pods until cancelled."""
        events = watcher(
            self.client, Pod.resource_info(),
            WatchConfig(field_selector=f"spec.nodeName={self.settings.name}"),
            decode=lambda raw: raw,
        )
        async for event in events:
            if event.type is EventType.INIT_DONE:
                self.ready.set()
            if event.object is None:
                continue
            pod: dict[str, Any] = event.object
            try:
                if event.type is EventType.DELETE:
                    await self._forget(pod["metadata"]["uid"])
                elif event.type in (EventType.APPLY, EventType.INIT_APPLY):
                    await self._sync(pod)
            except (ApiError, TransportError, OSError) as exc:
                meta = pod["metadata"]
                log.warning("pod %s/%s: %s", meta.get("namespace"), meta.get("name"), exc)

    async def stop_all(self) -> None:
        """Stop every process this node started, and every retry and token refresh."""
        for uid in list(self._waiting):
            await self._stop_waiting(uid)
        for pod in list(self._pods.values()):
            if pod.monitor is not None:
                pod.monitor.cancel()
            for process in pod.processes.values():
                await asyncio.to_thread(process.stop, 5.0)
            pod.end_volumes()
        self._pods.clear()
        await self._recorder.close()

    # --- lifecycle ---------------------------------------------------------------------
    async def _sync(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        phase = (pod.get("status") or {}).get("phase")
        if meta.get("deletionTimestamp"):
            await self._terminate(pod)
            return
        if meta["uid"] in self._pods or meta["uid"] in self._waiting:
            return
        if phase in ("Succeeded", "Failed"):
            return
        await self._start(pod)

    async def _stop_waiting(self, uid: str) -> None:
        waiting = self._waiting.pop(uid, None)
        if waiting is not None and waiting.task is not None:
            waiting.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting.task

    async def _terminate(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        await self._stop_waiting(meta["uid"])
        running = self._pods.get(meta["uid"])
        if running is not None:
            grace = float(meta.get("deletionGracePeriodSeconds") or running.grace)
            if running.monitor is not None:
                running.monitor.cancel()
            for process in running.processes.values():
                await asyncio.to_thread(process.stop, min(grace, 30.0))
            running.end_volumes()
        with contextlib.suppress(NotFound, Conflict):
            await self._api.delete(meta["name"], namespace=meta["namespace"],
                                   grace_period_seconds=0, uid=meta["uid"])
        await self._forget(meta["uid"])
        shutil.rmtree(self._workdir(meta), ignore_errors=True)

    async def _forget(self, uid: str) -> None:
        await self._stop_waiting(uid)
        running = self._pods.pop(uid, None)
        if running is None:
            return
        if running.monitor is not None:
            running.monitor.cancel()
        for process in running.processes.values():
            await asyncio.to_thread(process.stop, 5.0)
        running.end_volumes()
        self.routing.forget(running.ip)
        self.routing.addresses.give_back(running.ip)
        shutil.rmtree(running.workdir, ignore_errors=True)

    def _workdir(self, meta: Mapping[str, Any]) -> Path:
        return self.root / str(meta["namespace"]) / f"{meta['name']}-{str(meta['uid'])[:8]}"

    async def _patch_status(self, pod: Mapping[str, Any], status: dict[str, Any]) -> None:
        meta = pod["metadata"]
        await self._api.patch_status(meta["name"], {"metadata": {"uid": meta["uid"]},
                                                    "status": status},
                                     namespace=meta["namespace"])

    async def _fail(self, pod: Mapping[str, Any], reason: str, message: str) -> None:
        at = now()
        await self._patch_status(pod, {
            "phase": "Failed", "reason": reason, "message": message,
            "hostIP": self.node_ip, "startTime": at,
            "containerStatuses": [{
                "name": c["name"], "image": c.get("image", ""), "imageID": "",
                "ready": False, "restartCount": 0,
                "state": {"terminated": {
                    "exitCode": 128, "reason": reason, "message": message,
                    "startedAt": at, "finishedAt": at}},
            } for c in pod["spec"].get("containers") or []],
        })

    def _unsupported(self, images: list[str]) -> str:
        cannot = f"cannot run {', '.join(images)}"
        if not self.settings.runners:
            return (f"kuar's local node has no runner configured "
                    f"(LocalNodeSettings.runners is empty); {cannot}")
        known = ", ".join(sorted(self.settings.runners))
        return f"kuar's local node runs only the images {known}; {cannot}"

    def _check(self, pod: Mapping[str, Any], workdir: Path) -> _Prepared:
        """Every check of a pod before anything is read or started; raises :class:`Refused`."""
        folders = plan_volumes(pod["spec"], workdir / VOLUMES_DIR)
        rewriters = {}
        for container in pod["spec"].get("containers") or []:
            runner = runner_for(self.settings.runners, container.get("image", ""))
            assert runner is not None
            rewrite = PathRewriter(container_mounts(container, folders))
            check_container(runner, container, workdir / container["name"], rewrite)
            rewriters[container["name"]] = rewrite
        return _Prepared(rewriters, PodVolumes(self.client, pod, folders, workdir / VOLUMES_DIR))

    async def _start(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        containers: list[dict[str, Any]] = spec.get("containers") or []
        runners = self.settings.runners
        unknown = [c.get("image", "") for c in containers
                   if runner_for(runners, c.get("image", "")) is None]
        if unknown:
            await self._fail(pod, "UnsupportedImage", self._unsupported(unknown))
            return
        workdir = self._workdir(meta)
        try:
            prepared = self._check(pod, workdir)
            keyed = {c["name"]: await self._key_refs(meta["namespace"], c) for c in containers}
            await prepared.volumes.prepare()
        except Refused as refused:  # also a kubelet's CreateContainerConfigError
            log.warning("pod %s/%s refused: %s", meta["namespace"], meta["name"], refused)
            await self._fail(pod, refused.reason, refused.message)
            return
        except MountPending as pending:
            await self._wait_for_volumes(pod, pending.message)
            return
        ip = self.routing.addresses.take()
        if ip is None:
            prepared.volumes.remove()
            await self._fail(pod, "OutOfAddresses",
                             f"the local node's pod range {self.settings.pod_cidr} is used up")
            return
        running = _RunningPod(
            uid=meta["uid"], namespace=meta["namespace"], name=meta["name"], ip=ip,
            started=now(),
            workdir=workdir,
            grace=float(spec.get("terminationGracePeriodSeconds") or 30),
            volumes=prepared.volumes,
        )
        self._pods[meta["uid"]] = running
        for container in containers:  # processes share this machine's loopback
            for port in container.get("ports") or []:
                self.routing.expose(ip, int(port["containerPort"]), int(port["containerPort"]))
        resolve = (await self.routing.resolve_map(meta["namespace"])
                   if self.settings.resolve_env else {})
        try:
            for container in containers:
                self._start_container(pod, container, running, resolve,
                                      keyed[container["name"]],
                                      prepared.rewriters[container["name"]])
        except OSError as exc:  # the runner's program cannot be started: undo, say why
            await self._forget(meta["uid"])
            await self._fail(pod, "StartError", f"container {container['name']}: {exc}")
            return
        running.tokens = asyncio.create_task(prepared.volumes.keep_tokens_fresh())
        await self._patch_status(pod, self._running_status(pod, running))
        running.monitor = asyncio.create_task(self._monitor(pod, running))

    async def _wait_for_volumes(self, pod: dict[str, Any], message: str) -> None:
        """Keep the pod Pending (ContainerCreating), say why, and try again later.

        A kubelet does the same: the pod waits for its ConfigMap or Secret, a ``FailedMount``
        Warning Event tells why, and the mount is retried (here after 0.5 s, doubling to 5 s).
        Never raises: a status that cannot be written now is written on a later attempt.
        """
        meta = pod["metadata"]
        waiting = self._waiting.get(meta["uid"])
        shown = waiting.shown if waiting is not None else ""
        if shown != message:
            log.warning("pod %s/%s waits: %s", meta["namespace"], meta["name"], message)
            self._recorder.event({"apiVersion": "v1", "kind": "Pod", "metadata": meta},
                                 WARNING, "FailedMount", message, action="Mount")
            try:
                await self._patch_status(pod, self._pending_status(pod, message))
                shown = message
            except (ApiError, TransportError, OSError) as exc:  # shown on the next attempt
                log.warning("pod %s/%s: status not written: %s", meta["namespace"],
                            meta["name"], exc)
        delay = RETRY_FIRST if waiting is None else min(waiting.delay * 2, RETRY_MAX)
        waiting = self._waiting[meta["uid"]] = _Waiting(message, shown, delay)
        waiting.task = asyncio.create_task(self._retry(pod, delay))

    async def _retry(self, pod: dict[str, Any], delay: float) -> None:
        await asyncio.sleep(delay)
        meta = pod["metadata"]
        try:
            await self._start(pod)
        except (ApiError, TransportError, OSError) as exc:  # the API server may be restarting
            log.warning("pod %s/%s: %s", meta["namespace"], meta["name"], exc)
            waiting = self._waiting.get(meta["uid"])
            await self._wait_for_volumes(pod, waiting.message if waiting else str(exc))
            return
        waiting = self._waiting.get(meta["uid"])
        if waiting is not None and waiting.task is asyncio.current_task():
            del self._waiting[meta["uid"]]  # started or failed: no new attempt was scheduled

    async def _key_refs(self, namespace: str, container: Mapping[str, Any]) -> dict[str, str]:
        """Env values from ``configMapKeyRef``/``secretKeyRef``, read as a kubelet would.

        A missing object or key (not ``optional``) refuses the pod naming the reference,
        never the value.
        """
        values: dict[str, str] = {}
        for var in container.get("env") or []:
            source = var.get("valueFrom") or {}
            for kind, ref_key in (("configmaps", "configMapKeyRef"),
                                  ("secrets", "secretKeyRef")):
                ref = source.get(ref_key)
                if not ref:
                    continue
                name, key = str(ref.get("name", "")), str(ref.get("key", ""))
                try:
                    obj = await self.client.request(
                        "GET", f"/api/v1/namespaces/{namespace}/{kind}/{name}")
                except NotFound:
                    obj = None
                raw = ((obj or {}).get("data") or {}).get(key)
                if raw is None:
                    if ref.get("optional"):
                        continue
                    raise Refused("CreateContainerConfigError",
                                  f"{ref_key} {name}/{key} of env {var.get('name')} not found")
                if kind == "secrets":
                    raw = base64.b64decode(raw).decode("utf-8", "replace")
                values[str(var["name"])] = str(raw)
        return values

    def _start_container(self, pod: Mapping[str, Any], container: Mapping[str, Any],
                         running: _RunningPod, resolve: Mapping[str, str],
                         keyed: Mapping[str, str], rewrite: PathRewriter) -> None:
        runner = runner_for(self.settings.runners, container["image"])
        assert runner is not None
        name = container["name"]
        workdir = running.workdir / name
        workdir.mkdir(parents=True, exist_ok=True)
        message_file = workdir / "termination-log"
        message_file.write_text("")
        declared = container.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH
        # Processes cannot mount: wherever a mount path appears in the container's args and
        # env values, the process gets the local folder instead (the runner's own argv parts
        # are not touched); likewise the termination message path (the kubelet mounts a host
        # file there) becomes the local file's path in the args and env.
        own = {**self._container_env(pod, container, running.ip), **keyed}
        local = {**container, "args": [rewrite(str(a)) for a in container.get("args") or []]}
        argv = [a.replace(declared, str(message_file)) for a in runner.argv(local)]
        env = {**{k: rewrite(v) for k, v in own.items()}, **self._node_env(pod, resolve)}
        env = {k: v.replace(declared, str(message_file)) for k, v in env.items()}
        process = Process(name, argv, workdir, env=env)
        process.start()
        running.processes[name] = process
        running.message_files[name] = message_file
        running.fallback_to_logs[name] = (
            container.get("terminationMessagePolicy") == "FallbackToLogsOnError"
        )

    # --- status ------------------------------------------------------------------------
    def _pending_status(self, pod: Mapping[str, Any], message: str) -> dict[str, Any]:
        at = now()
        conditions = [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": at},
            {"type": "Initialized", "status": "True", "lastTransitionTime": at},
        ] + [{"type": t, "status": "False", "reason": "ContainersNotReady",
              "message": message, "lastTransitionTime": at}
             for t in ("ContainersReady", "Ready")]
        return {
            "phase": "Pending", "hostIP": self.node_ip, "startTime": at, "message": message,
            "conditions": conditions,
            "containerStatuses": [{
                "name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False,
                "started": False, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating", "message": message}},
            } for c in pod["spec"].get("containers") or []],
        }

    def _running_status(self, pod: Mapping[str, Any], running: _RunningPod) -> dict[str, Any]:
        conditions = [
            {"type": t, "status": "True", "lastTransitionTime": running.started}
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        return {
            "phase": "Running", "hostIP": self.node_ip, "podIP": running.ip,
            "podIPs": [{"ip": running.ip}], "startTime": running.started,
            "conditions": conditions, "message": None,
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
                    exits[name] = (code, now())
        running.end_volumes()  # a kubelet keeps them until deletion; nothing reads them now
        statuses = []
        for container in pod["spec"]["containers"]:
            name = container["name"]
            code, finished = exits[name]
            message = _termination_message(running, name, code)
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
            {"type": t, "status": "False", "reason": "PodCompleted", "lastTransitionTime": now()}
            for t in ("Ready", "ContainersReady")
        ]
        final = {"phase": "Failed" if failed else "Succeeded", "conditions": conditions,
                 "containerStatuses": statuses}
        # A kubelet keeps trying to report a pod's end: if the API server is down (restarting),
        # a lost final status would leave the pod Running and its Job waiting for its deadline.
        delay = 0.5
        for attempt in range(1, FINAL_STATUS_ATTEMPTS + 1):
            try:
                await self._patch_status(pod, final)
                return
            except NotFound:
                return  # the pod is gone: nothing to report to
            except (ApiError, TransportError, OSError) as exc:
                log.warning("pod %s/%s: final status not written (attempt %d): %s",
                            running.namespace, running.name, attempt, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _container_env(self, pod: Mapping[str, Any], container: Mapping[str, Any],
                       ip: str) -> dict[str, str]:
        """The container's own env values (names checked by :func:`check_container`)."""
        env: dict[str, str] = {}
        for var in container.get("env") or []:
            if "value" in var:
                env[var["name"]] = str(var["value"])
            elif (var.get("valueFrom") or {}).get("fieldRef"):
                env[var["name"]] = field_ref(
                    pod, var["valueFrom"]["fieldRef"]["fieldPath"], ip, self.node_ip
                )
        return env

    def _node_env(self, pod: Mapping[str, Any], resolve: Mapping[str, str]) -> dict[str, str]:
        """The node's own values, which win over the container's."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOSTNAME": pod["metadata"]["name"],
            "PYTHONUNBUFFERED": "1",
            **self._service_env,
        }
        if self.settings.resolve_env:
            env[self.settings.resolve_env] = json.dumps(dict(resolve), separators=(",", ":"))
        return env


def _termination_message(running: _RunningPod, name: str, code: int) -> str:
    data = running.message_files[name].read_bytes()[:MAX_TERMINATION_MESSAGE]
    if not data and code != 0 and running.fallback_to_logs[name]:
        # the kubelet's FallbackToLogsOnError: the last 80 lines, at most 2048 bytes
        tail = running.processes[name].log_tail(80).encode()
        data = tail[-2048:]
    return data.decode(errors="replace")

