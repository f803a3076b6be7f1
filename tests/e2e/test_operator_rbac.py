"""The operator runs with exactly the generated RBAC (deploy/rbac) and nothing more."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from kuar.client import Client, Forbidden, apply_manifests, load_config
from kuar.manager import HealthSettings, LeaderElectionSettings
from kuar_loadtest.operator import OperatorOptions, build_manager
from kuar_loadtest.rbac import LEASE, OPERATOR
from kuar_loadtest.settings import OperatorSettings
from tests.e2e.conftest import Cluster, create, loadtest, target_service, wait_phase


async def _service_account_kubeconfig(cluster: Cluster, path: Path) -> Path:
    token: dict[str, Any] = await cluster.client.request(
        "POST", f"/api/v1/namespaces/{OPERATOR.namespace}/serviceaccounts/{OPERATOR.name}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 3600}})
    admin = yaml.safe_load(cluster.plane.kubeconfig.read_text())
    cluster_entry = admin["clusters"][0]
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "clusters": [cluster_entry],
        "users": [{"name": "operator", "user": {"token": token["status"]["token"]}}],
        "contexts": [{"name": "operator", "context": {"cluster": cluster_entry["name"],
                                                      "user": "operator"}}],
        "current-context": "operator",
    }))
    return path


async def test_operator_works_with_only_the_generated_rbac(
    cluster: Cluster, ns: str, tmp_path: Path
) -> None:
    await cluster.client.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR.namespace}})
    await apply_manifests(cluster.client, OPERATOR.manifests(), field_manager="e2e")
    config = await _service_account_kubeconfig(cluster, tmp_path / "operator.kubeconfig")
    operator_client = Client(await load_config(config))
    try:
        # least privilege: the operator cannot list Secrets (it may get one by name, to check
        # that a request body's key exists: docs/decisions/0015), other Leases, or delete
        # LoadTests
        for method, path in (("GET", f"/api/v1/namespaces/{ns}/secrets"),
                             ("GET", f"/api/v1/namespaces/{OPERATOR.namespace}/secrets"),
                             ("GET", f"/apis/coordination.k8s.io/v1/namespaces/"
                                     f"{OPERATOR.namespace}/leases/other"),
                             ("GET", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"),
                             ("DELETE", f"/apis/beta.kuar.com/v1/namespaces/{ns}/loadtests/x")):
            try:
                await operator_client.request(method, path)
                raise AssertionError(f"{method} {path} was allowed")
            except Forbidden:
                pass
        manager = build_manager(operator_client, OperatorOptions(
            namespace=ns, handle_signals=False, health=HealthSettings(port=0),
            # the Lease lives in kuar-system (a Role there), under the name RBAC allows
            leader_election=LeaderElectionSettings(name=LEASE, namespace=OPERATOR.namespace),
            # the target is published selector-less on the local node's pod range
            settings=OperatorSettings(allowed_endpoint_cidrs=(cluster.node.settings.pod_cidr,)),
        ))
        async with target_service(cluster, ns):
            running = asyncio.create_task(manager.run())
            try:
                await create(cluster, ns, loadtest("rbac", duration="2s"))
                lt = await wait_phase(cluster, ns, "rbac", "Succeeded")
                assert lt["status"]["results"]["errors"] == 0
            finally:
                manager.stop()
                await asyncio.wait_for(running, 30)
    finally:
        await operator_client.close()
