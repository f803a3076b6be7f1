"""Pod volumes on the local node: files from ConfigMaps, Secrets, the downward API and bound
service-account tokens, read by the pod's own process; refusals and waiting pods.

The pods run a small Python program (the test image ``example.test/python``) that finds its
files through the mount paths in its args and env, which the node rewrites to local folders.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from kuar.client import Client, NotFound, load_config
from kuar.testing import ControlPlane, eventually_async
from kuar.testing.localnode import CommandRunner, LocalNode, LocalNodeSettings
from kuar.testing.localnode.volumes import PodVolumes, plan_volumes
from tests.integration.testing.nodes import running_node

PY_IMAGE = "example.test/python"
SECRET_VALUE = "not-a-real-password"


def py_runner(container: Mapping[str, Any]) -> list[str]:
    """``python -c <first arg> <other args>``: the pod's script is its first arg."""
    args = container["args"]
    return [sys.executable, "-c", args[0], *args[1:]]


@pytest.fixture
async def node(kube_client: Client, tmp_path: Path) -> AsyncIterator[LocalNode]:
    root = tmp_path / "node"
    root.mkdir()
    settings = LocalNodeSettings(
        name=f"node-{uuid.uuid4().hex[:8]}", root_dir=root,
        runners={PY_IMAGE: CommandRunner(
            command=py_runner, path_flags=frozenset({"--file"}),
            allowed_env=frozenset({"SA_DIR", "SEC", "DOWN", "SCRATCH", "MAYBE"}))},
    )
    async with running_node(kube_client, settings) as local:
        yield local


def _pod(node: LocalNode, name: str, script: str, *, args: tuple[str, ...] = (),
         volumes: list[dict[str, Any]], mounts: list[dict[str, Any]],
         env: Mapping[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "demo", "tier": "web"},
                     "annotations": {"note": 'say "hi"\nagain'}},
        "spec": {
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 2,
            "nodeSelector": {"kubernetes.io/hostname": node.name},
            "automountServiceAccountToken": False,
            "volumes": volumes,
            "containers": [{
                "name": "main", "image": PY_IMAGE, "args": [script, *args],
                "volumeMounts": mounts,
                "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
            }],
            **spec,
        },
    }


async def _create(client: Client, ns: str, kind: str, body: dict[str, Any]) -> None:
    await client.request("POST", f"/api/v1/namespaces/{ns}/{kind}", body=body)


async def _pod_when(client: Client, ns: str, name: str, what: str,
                    check: Any) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        pod: dict[str, Any] = await client.request("GET", f"/api/v1/namespaces/{ns}/pods/{name}")
        assert check(pod.get("status") or {}), f"{what}: {pod.get('status')}"
        return pod

    return await eventually_async(probe, timeout=45, interval=0.2)


async def _gone(client: Client, ns: str, name: str) -> None:
    async def gone() -> None:
        try:
            await client.request("GET", f"/api/v1/namespaces/{ns}/pods/{name}")
        except NotFound:
            return
        raise AssertionError(f"pod {name} still exists")

    await eventually_async(gone, timeout=30)


def _phase(phase: str) -> Any:
    return lambda status: status.get("phase") == phase


def _message(pod: Mapping[str, Any]) -> dict[str, Any]:
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0, terminated
    result: dict[str, Any] = json.loads(terminated["message"])
    return result


READ_FILES = """
import hashlib, json, os, stat, sys
def mode(path):
    return oct(stat.S_IMODE(os.stat(path).st_mode))
body = sys.argv[1].split("=", 1)[1]
sec, down, scratch = os.environ["SEC"], os.environ["DOWN"], os.environ["SCRATCH"]
with open(os.path.join(scratch, "note"), "w") as f:
    f.write("written")
out = {
    "body": open(body).read(), "body_mode": mode(body),
    "secret_sha256": hashlib.sha256(open(sec + "/password", "rb").read()).hexdigest(),
    "secret_mode": mode(sec + "/password"), "secret_files": sorted(os.listdir(sec)),
    "user_mode": mode(sec + "/user"), "optional": os.listdir(os.environ["MAYBE"]),
    "name": open(down + "/name").read(), "labels": open(down + "/labels").read(),
    "annotations": open(down + "/annotations").read(),
    "note": open(down + "/note").read(), "scratch": open(os.path.join(scratch, "note")).read(),
    "paths": [body, sec, down, scratch],
}
open("/dev/termination-log", "w").write(json.dumps(out))
"""


async def test_pod_reads_configmap_secret_and_downward_files_which_go_when_it_ends(
    kube_client: Client, namespace: str, node: LocalNode
) -> None:
    await _create(kube_client, namespace, "configmaps", {
        "metadata": {"name": "bodies"}, "data": {"body.json": '{"a": 1}', "unused": "x"}})
    await _create(kube_client, namespace, "secrets", {
        "metadata": {"name": "creds"}, "stringData": {"password": SECRET_VALUE, "user": "u"}})
    await _create(kube_client, namespace, "pods", _pod(
        node, "reader", READ_FILES, args=("--file=/etc/bodies/data/body.json",),
        volumes=[
            {"name": "bodies", "configMap": {"name": "bodies", "items": [
                {"key": "body.json", "path": "data/body.json"}]}},
            {"name": "creds", "secret": {"secretName": "creds", "items": [
                {"key": "password", "path": "password"},
                {"key": "user", "path": "user", "mode": 0o400}]}},
            {"name": "maybe", "configMap": {"name": "absent", "optional": True}},
            {"name": "podinfo", "downwardAPI": {"items": [
                {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                {"path": "note", "fieldRef": {"fieldPath": "metadata.annotations['note']"}}]}},
            {"name": "scratch", "emptyDir": {}},
        ],
        mounts=[{"name": "bodies", "mountPath": "/etc/bodies"},
                {"name": "creds", "mountPath": "/etc/creds", "readOnly": True},
                {"name": "podinfo", "mountPath": "/etc/podinfo"},
                {"name": "scratch", "mountPath": "/scratch"},
                {"name": "maybe", "mountPath": "/etc/maybe"}],
        env={"SEC": "/etc/creds", "DOWN": "/etc/podinfo", "SCRATCH": "/scratch",
             "MAYBE": "/etc/maybe"}))
    pod = await _pod_when(kube_client, namespace, "reader", "Succeeded", _phase("Succeeded"))
    seen = _message(pod)
    assert seen["body"] == '{"a": 1}' and seen["body_mode"] == "0o644"
    assert seen["secret_sha256"] == hashlib.sha256(SECRET_VALUE.encode()).hexdigest()
    assert seen["secret_mode"] == "0o600"  # defaultMode 0644, owner bits only on this machine
    assert seen["secret_files"] == ["password", "user"]
    assert seen["user_mode"] == "0o400"  # an item's own mode
    assert seen["optional"] == []  # an optional ConfigMap that does not exist: an empty folder
    assert seen["name"] == "reader"
    assert seen["labels"] == 'app="demo"\ntier="web"'  # the kubelet's format: Go's %q
    assert seen["annotations"] == 'note="say \\"hi\\"\\nagain"'
    assert seen["note"] == 'say "hi"\nagain'  # one annotation: its raw value
    assert seen["scratch"] == "written"
    for path in seen["paths"]:  # local folders inside the pod's folder, removed at its end
        assert "/_volumes/" in path, path
        assert not Path(path).exists(), path
    assert SECRET_VALUE not in json.dumps(pod)


WHO_AM_I = """
import json, os, ssl, time, urllib.request
d = os.environ["SA_DIR"]
host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
context = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
request = urllib.request.Request(
    f"https://{host}:{port}/apis/authentication.k8s.io/v1/selfsubjectreviews", method="POST",
    data=json.dumps({"apiVersion": "authentication.k8s.io/v1",
                     "kind": "SelfSubjectReview"}).encode(),
    headers={"Authorization": "Bearer " + open(os.path.join(d, "token")).read(),
             "Content-Type": "application/json"})
info = json.load(urllib.request.urlopen(request, context=context, timeout=10))
user = info["status"]["userInfo"]
with open("/dev/termination-log", "w") as f:
    f.write(json.dumps({"user": user["username"],
                        "pod": user.get("extra", {}).get("authentication.kubernetes.io/pod-name"),
                        "namespace": open(os.path.join(d, "namespace")).read()}))
"""
STAY = "\ntime.sleep(120)\n"


def _who(server: str, ca_pem: bytes, token: str) -> tuple[int, str]:
    """SelfSubjectReview with ``token``: (HTTP status, username)."""
    context = ssl.create_default_context(cadata=ca_pem.decode())
    request = urllib.request.Request(
        f"{server}/apis/authentication.k8s.io/v1/selfsubjectreviews", method="POST",
        data=json.dumps({"apiVersion": "authentication.k8s.io/v1",
                         "kind": "SelfSubjectReview"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            return answer.status, json.load(answer)["status"]["userInfo"]["username"]
    except urllib.error.HTTPError as exc:
        return exc.code, ""


async def test_pod_calls_the_api_with_its_bound_projected_token(
    kube_client: Client, namespace: str, node: LocalNode, control_plane: ControlPlane,
    tmp_path: Path,
) -> None:
    await _create(kube_client, namespace, "serviceaccounts", {"metadata": {"name": "worker"}})
    await _create(kube_client, namespace, "pods", _pod(
        node, "caller", WHO_AM_I + STAY, serviceAccountName="worker",
        volumes=[{"name": "api", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 600}},
            {"configMap": {"name": "kube-root-ca.crt",
                           "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [
                {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
        ]}}],
        mounts=[{"name": "api", "mountPath": "/var/run/secrets/kuar/api", "readOnly": True}],
        env={"SA_DIR": "/var/run/secrets/kuar/api"}))
    await _pod_when(kube_client, namespace, "caller", "Running", _phase("Running"))
    (pod_dir,) = (tmp_path / "node").glob(f"kuar-node-*/{namespace}/caller-*")

    async def answered() -> dict[str, Any]:
        text = (pod_dir / "main" / "termination-log").read_text()
        assert text, "no answer yet"
        result: dict[str, Any] = json.loads(text)
        return result

    seen = await eventually_async(answered, timeout=30, interval=0.2)
    assert seen == {"user": f"system:serviceaccount:{namespace}:worker", "pod": ["caller"],
                    "namespace": namespace}
    token_file = pod_dir / "_volumes" / "api" / "token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text()
    server, ca = control_plane.server, control_plane.ca_pem
    assert await asyncio.to_thread(_who, server, ca, token) == (
        201, f"system:serviceaccount:{namespace}:worker")

    await kube_client.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/caller")

    await _gone(kube_client, namespace, "caller")

    async def removed() -> None:
        assert not pod_dir.exists()

    await eventually_async(removed, timeout=10)

    # the token is bound to the pod: it dies with it, once the API server's token cache
    # (10 s for accepted tokens) has forgotten it
    async def rejected() -> None:
        assert (await asyncio.to_thread(_who, server, ca, token))[0] == 401

    await eventually_async(rejected, timeout=30, interval=0.5)


async def test_the_admission_made_service_account_volume_works_at_its_usual_path(
    kube_client: Client, namespace: str, node: LocalNode
) -> None:
    pod = _pod(node, "default-sa", WHO_AM_I, volumes=[], mounts=[],
               env={"SA_DIR": "/var/run/secrets/kubernetes.io/serviceaccount"})
    del pod["spec"]["automountServiceAccountToken"]  # the ServiceAccount plugin adds the volume
    await _create(kube_client, namespace, "pods", pod)
    done = await _pod_when(kube_client, namespace, "default-sa", "Succeeded",
                           _phase("Succeeded"))
    assert done["spec"]["volumes"][0]["name"].startswith("kube-api-access-")
    assert _message(done) == {"user": f"system:serviceaccount:{namespace}:default",
                              "pod": ["default-sa"], "namespace": namespace}


async def test_a_token_is_requested_again_when_due_and_replaced(
    kube_client: Client, namespace: str, control_plane: ControlPlane, tmp_path: Path
) -> None:
    await _create(kube_client, namespace, "serviceaccounts", {"metadata": {"name": "worker"}})
    pod: dict[str, Any] = await kube_client.request(
        "POST", f"/api/v1/namespaces/{namespace}/pods", body={
            "metadata": {"name": "unscheduled"},
            "spec": {"serviceAccountName": "worker", "automountServiceAccountToken": False,
                     "nodeName": "no-such-node",  # nothing runs it: only its token matters
                     "containers": [{"name": "main", "image": PY_IMAGE}],
                     "volumes": [{"name": "api", "projected": {"sources": [
                         {"serviceAccountToken": {"path": "token",
                                                  "expirationSeconds": 600}}]}}]}})
    folder = tmp_path / "_volumes"
    volumes = PodVolumes(kube_client, pod, plan_volumes(pod["spec"], folder), folder)
    try:
        before = time.time()
        await volumes.prepare()
        first = (folder / "api" / "token").read_text()
        (due,) = volumes.token_refresh_times
        assert before + 0.8 * 600 - 5 <= due <= time.time() + 0.8 * 600 + 5  # 80 % of its life
        assert await volumes.refresh(time.time()) == 0  # not due yet: nothing requested
        assert await volumes.refresh(due) == 1
        second = (folder / "api" / "token").read_text()
        assert second != first
        assert (folder / "api" / "token").stat().st_mode & 0o777 == 0o600
        assert await asyncio.to_thread(_who, control_plane.server, control_plane.ca_pem,
                                       second) == (201, f"system:serviceaccount:{namespace}:worker")
        volumes.remove()
        assert not folder.exists()
    finally:  # no kubelet will confirm its deletion
        await kube_client.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/unscheduled",
                                  params={"gracePeriodSeconds": "0"})


READ_BODY = """
import sys
open("/dev/termination-log", "w").write(open(sys.argv[1].split("=", 1)[1]).read())
"""


async def test_a_missing_configmap_keeps_the_pod_waiting_until_it_exists(
    kube_client: Client, namespace: str, node: LocalNode
) -> None:
    await _create(kube_client, namespace, "pods", _pod(
        node, "waiter", READ_BODY, args=("--file=/etc/body/body.json",),
        volumes=[{"name": "body", "configMap": {"name": "later"}}],
        mounts=[{"name": "body", "mountPath": "/etc/body"}]))
    expected = 'MountVolume.SetUp failed for volume "body" : configmap "later" not found'

    def waiting(status: Mapping[str, Any]) -> bool:
        states = status.get("containerStatuses") or [{}]
        return (status.get("phase") == "Pending" and states[0].get("state", {}).get(
            "waiting", {}) == {"reason": "ContainerCreating", "message": expected})

    pod = await _pod_when(kube_client, namespace, "waiter", "waiting", waiting)
    assert pod["status"]["message"] == expected

    async def warned() -> None:
        events = await kube_client.request(
            "GET", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events")
        assert any(e["regarding"]["name"] == "waiter" and e["reason"] == "FailedMount"
                   and e["type"] == "Warning" and e["note"] == expected
                   for e in events["items"]), events["items"]

    await eventually_async(warned, timeout=15)

    # a waiting pod can be deleted: the node stops retrying and confirms the deletion
    await _create(kube_client, namespace, "pods", _pod(
        node, "abandoned", READ_BODY, args=("--file=/etc/body/body.json",),
        volumes=[{"name": "body", "secret": {"secretName": "never"}}],
        mounts=[{"name": "body", "mountPath": "/etc/body"}]))
    await _pod_when(kube_client, namespace, "abandoned", "waiting", lambda status: (
        'secret "never" not found' in str(status.get("message"))))
    await kube_client.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/abandoned")

    await _gone(kube_client, namespace, "abandoned")

    await _create(kube_client, namespace, "configmaps", {
        "metadata": {"name": "later"}, "data": {"body.json": "arrived"}})
    done = await _pod_when(kube_client, namespace, "waiter", "Succeeded", _phase("Succeeded"))
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["message"] == "arrived"


WRITE_MARKER = """
open("/host/marker", "w").write("ran")
"""


async def test_a_host_path_volume_is_refused_and_nothing_starts(
    kube_client: Client, namespace: str, node: LocalNode, tmp_path: Path
) -> None:
    host = tmp_path / "host"
    await _create(kube_client, namespace, "pods", _pod(
        node, "hostpath", WRITE_MARKER,
        volumes=[{"name": "host", "hostPath": {"path": str(host), "type": "DirectoryOrCreate"}}],
        mounts=[{"name": "host", "mountPath": "/host"}]))
    pod = await _pod_when(kube_client, namespace, "hostpath", "Failed", _phase("Failed"))
    status = pod["status"]
    assert status["reason"] == "UnsupportedVolume"
    assert "volume 'host': a hostPath volume is not supported" in status["message"]
    (container,) = status["containerStatuses"]
    assert "containerID" not in container["state"]["terminated"]  # no process was started
    assert not host.exists()


async def test_a_waiting_pod_outlives_an_api_server_outage_and_then_runs(tmp_path: Path) -> None:
    """The node's retries meet a killed API server (refused connections), keep the pod, and
    start it once the API server is back and the ConfigMap exists: nothing lost."""
    with ControlPlane() as plane:  # no controller-manager: no ServiceAccount volume either
        client = Client(await load_config(plane.kubeconfig))
        settings = LocalNodeSettings(
            name="outage-node", root_dir=tmp_path,
            runners={PY_IMAGE: CommandRunner(command=py_runner, path_flags=frozenset({"--file"}))})
        try:
            async with running_node(client, settings) as node:
                pod = _pod(node, "patient", READ_BODY, args=("--file=/etc/body/body.json",),
                           volumes=[{"name": "body", "configMap": {"name": "later"}}],
                           mounts=[{"name": "body", "mountPath": "/etc/body"}],
                           nodeName=node.name)
                await _create(client, "default", "pods", pod)
                await _pod_when(client, "default", "patient", "waiting",
                                lambda status: status.get("phase") == "Pending")
                await asyncio.to_thread(plane.stop_apiserver, kill=True)
                await asyncio.sleep(1)  # retries fail on the connection (and while it starts)
                await asyncio.to_thread(plane.start_apiserver)
                await _create(client, "default", "configmaps", {
                    "metadata": {"name": "later"}, "data": {"body.json": "after the outage"}})
                done = await _pod_when(client, "default", "patient", "Succeeded",
                                       _phase("Succeeded"))
                terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
                assert terminated["message"] == "after the outage"
        finally:
            await client.close()
