"""kuar.client.kubeconfig against the real API server: an exec credential plugin's token, a
token file, and a wrong token refused with the API server's 401 (not a crash)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuar.client import AlreadyExists, ApiError, Client, load_config, whoami
from kuar.testing import ControlPlane

pytestmark = pytest.mark.controlplane


async def service_account_token(admin: Client, ns: str, name: str) -> str:
    with contextlib.suppress(AlreadyExists):
        await admin.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", body={
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
    token: dict[str, Any] = await admin.request(
        "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{name}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 3600}})
    return str(token["status"]["token"])


def kubeconfig(plane: ControlPlane, path: Path, user: dict[str, Any]) -> Path:
    cluster = yaml.safe_load(plane.kubeconfig.read_text())["clusters"][0]
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "clusters": [cluster],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": cluster["name"], "user": "u"}}],
        "current-context": "c"}))
    return path


async def test_exec_plugin_and_token_file_authenticate(
    control_plane: ControlPlane, kube_client: Client, namespace: str, tmp_path: Path,
) -> None:
    token = await service_account_token(kube_client, namespace, "exec-user")
    expected = f"system:serviceaccount:{namespace}:exec-user"
    plugin = tmp_path / "plugin.py"
    plugin.write_text("import json\nprint(json.dumps({'apiVersion': "
                      "'client.authentication.k8s.io/v1', 'kind': 'ExecCredential', "
                      f"'status': {{'token': {json.dumps(token)}}}}}))\n")
    exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                          "command": sys.executable, "args": [str(plugin)]}}
    (tmp_path / "token").write_text(token)
    for user in (exec_user, {"tokenFile": str(tmp_path / "token")}):
        client = Client(await load_config(kubeconfig(control_plane, tmp_path / "kc", user)))
        try:
            assert await whoami(client) == expected
        finally:
            await client.close()


async def test_a_wrong_token_is_the_api_servers_401(
    control_plane: ControlPlane, tmp_path: Path,
) -> None:
    path = kubeconfig(control_plane, tmp_path / "kc", {"token": "not-a-token"})
    client = Client(await load_config(path))
    try:
        with pytest.raises(ApiError) as caught:
            await whoami(client)
        assert caught.value.code == 401
    finally:
        await client.close()
