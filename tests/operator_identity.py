"""The LoadTest operator's own identity on a local control plane: a ServiceAccount token
kubeconfig, shared by the tests that run the operator as a process or in a container."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kuar.client import Client
from kuar.testing import ControlPlane
from kuar_loadtest.rbac import OPERATOR


async def token_kubeconfig(admin: Client, plane: ControlPlane, path: Path) -> str:
    """Write a kubeconfig authenticating as the operator's ServiceAccount (a 1 h token).

    Returns the token (tests check it never reaches the log).
    """
    token: dict[str, Any] = await admin.request(
        "POST", f"/api/v1/namespaces/{OPERATOR.namespace}/serviceaccounts/{OPERATOR.name}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 3600}})
    value = str(token["status"]["token"])
    cluster = yaml.safe_load(plane.kubeconfig.read_text())["clusters"][0]
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "clusters": [cluster],
        "users": [{"name": "operator", "user": {"token": value}}],
        "contexts": [{"name": "operator", "context": {"cluster": cluster["name"],
                                                      "user": "operator"}}],
        "current-context": "operator"}))
    return value
