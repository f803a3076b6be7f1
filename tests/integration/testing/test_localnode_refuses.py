"""A pod spec picks nothing on this machine beyond what its runner allows (issue 14, finding 1).

The LoadTest app's own runner (``kuar_loadtest.local.local_runners``) on the local control
plane: env names outside the worker's contract (``PYTHONPATH``, ``PYTHONSTARTUP``), a
``--result-file`` outside the pod's folder, and a ``..`` in the termination message path each
fail the Pod with a clear reason, and nothing runs. The tricks are harmless: the "payload" is a
``sitecustomize.py`` in the test's tmp folder that would write a marker file there, and the
only address is 127.0.0.1.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kuar.client import Client
from kuar.testing import eventually_async
from kuar.testing.localnode import LocalNode, LocalNodeSettings
from kuar_loadtest.local import RESOLVE_ENV, local_runners
from kuar_loadtest.settings import OperatorSettings
from tests.integration.testing.nodes import running_node

IMAGE = OperatorSettings().image
ARGS = ["--json", "--no-progress", "--url", "http://127.0.0.1:1/", "--rps", "5",
        "--duration", "0.2", "--processes", "1"]


@pytest.fixture
async def node(kube_client: Client, tmp_path: Path) -> AsyncIterator[LocalNode]:
    root = tmp_path / "node"
    root.mkdir()
    settings = LocalNodeSettings(name=f"node-{uuid.uuid4().hex[:8]}", runners=local_runners(),
                                 resolve_env=RESOLVE_ENV, root_dir=root)
    async with running_node(kube_client, settings) as local:
        yield local


def _pod(node: LocalNode, name: str, **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 2,
            "nodeSelector": {"kubernetes.io/hostname": node.name},
            "containers": [{"name": "worker", "image": IMAGE, **container}],
        },
    }


async def _final(client: Client, ns: str, name: str) -> dict[str, Any]:
    async def check() -> dict[str, Any]:
        pod: dict[str, Any] = await client.request("GET", f"/api/v1/namespaces/{ns}/pods/{name}")
        assert pod.get("status", {}).get("phase") in ("Succeeded", "Failed"), pod.get("status")
        return pod

    return await eventually_async(check, timeout=60, interval=0.2)


def _nothing_ran(pod: dict[str, Any], reason: str, offender: str) -> None:
    status = pod["status"]
    assert (status["phase"], status.get("reason")) == ("Failed", reason), status
    assert offender in status["message"]
    (container,) = status["containerStatuses"]
    assert "containerID" not in container["state"]["terminated"]  # no process was started


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    """A sitecustomize.py that writes ``marker`` into tmp_path when any python starts with it."""
    site = tmp_path / "site"
    site.mkdir()
    marker = tmp_path / "marker"
    (site / "sitecustomize.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n")
    return site


@pytest.mark.parametrize("env_name", ["PYTHONPATH", "PYTHONSTARTUP", "PATH"])
async def test_env_outside_the_contract_fails_the_pod_and_runs_nothing(
    kube_client: Client, namespace: str, node: LocalNode, payload: Path, env_name: str
) -> None:
    value = str(payload / "sitecustomize.py") if env_name == "PYTHONSTARTUP" else str(payload)
    await kube_client.request("POST", f"/api/v1/namespaces/{namespace}/pods", body=_pod(
        node, "env", args=ARGS, env=[{"name": "PYTHONPATH", "value": str(payload)}]
        if env_name == "PYTHONPATH" else [{"name": env_name, "value": value}]))
    pod = await _final(kube_client, namespace, "env")
    _nothing_ran(pod, "ForbiddenEnv", env_name)
    assert not (payload.parent / "marker").exists()


async def test_a_result_file_outside_the_pod_folder_fails_the_pod(
    kube_client: Client, namespace: str, node: LocalNode, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    await kube_client.request("POST", f"/api/v1/namespaces/{namespace}/pods", body=_pod(
        node, "args", args=[*ARGS, "--result-file", str(elsewhere)]))
    pod = await _final(kube_client, namespace, "args")
    _nothing_ran(pod, "ForbiddenArgs", "--result-file")
    assert not elsewhere.exists()


async def test_a_result_file_climbing_out_of_the_termination_path_fails_the_pod(
    kube_client: Client, namespace: str, node: LocalNode, tmp_path: Path
) -> None:
    await kube_client.request("POST", f"/api/v1/namespaces/{namespace}/pods", body=_pod(
        node, "climb", args=[*ARGS, "--result-file=/dev/termination-log/../../../../x"]))
    pod = await _final(kube_client, namespace, "climb")
    _nothing_ran(pod, "ForbiddenArgs", "--result-file")


async def test_a_termination_message_path_with_dotdot_fails_the_pod(
    kube_client: Client, namespace: str, node: LocalNode
) -> None:
    await kube_client.request("POST", f"/api/v1/namespaces/{namespace}/pods", body=_pod(
        node, "traversal", args=[*ARGS, "--result-file", "/dev/../tmp/x"],
        terminationMessagePath="/dev/../tmp/x"))
    pod = await _final(kube_client, namespace, "traversal")
    _nothing_ran(pod, "ForbiddenPath", "terminationMessagePath")


async def test_the_worker_contract_still_runs(
    kube_client: Client, namespace: str, node: LocalNode
) -> None:
    """The operator's own pod shape passes: its flags, the spec env, the result file."""
    await kube_client.request("POST", f"/api/v1/namespaces/{namespace}/pods", body=_pod(
        node, "ok", args=["--json", "--no-progress", "--result-file", "/dev/termination-log"],
        env=[{"name": "KUAR_LOADGEN_SPEC", "value": '{"urls": ["http://127.0.0.1:1/"], '
              '"rps": 5, "duration": 0.2, "processes": 1}'},
             {"name": "JOB_COMPLETION_INDEX", "value": "0"}]))
    pod = await _final(kube_client, namespace, "ok")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert "containerID" in terminated  # it ran
    assert terminated.get("message", "").startswith("{")  # the result, in the pod's own file
