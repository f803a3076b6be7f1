"""Users made by add_user are subject to RBAC: 403 first, allowed after a Role and binding."""

from __future__ import annotations

from kuar.client import Client, Forbidden, load_config
from kuar.testing import ControlPlane, eventually_async


async def test_user_without_rights_is_forbidden_until_bound(
    control_plane: ControlPlane, kube_client: Client, namespace: str
) -> None:
    config = control_plane.add_user("alice", ["developers"])
    async with Client(await load_config(config)) as alice:
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        try:
            await alice.request("GET", path)
            raise AssertionError("alice could list configmaps without any binding")
        except Forbidden as exc:
            assert exc.code == 403
            assert 'User "alice"' in exc.message

        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
        await kube_client.request("POST", f"{rbac}/roles", body={
            "metadata": {"name": "cm-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                       "verbs": ["get", "list"]}],
        })
        await kube_client.request("POST", f"{rbac}/rolebindings", body={
            "metadata": {"name": "devs-read-cm"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "cm-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                          "name": "developers"}],
        })

        async def allowed() -> None:
            listed = await alice.request("GET", path)
            assert listed["kind"] == "ConfigMapList"

        await eventually_async(allowed, timeout=10)
        # The binding covers reading only.
        try:
            await alice.request("POST", path, body={"metadata": {"name": "nope"}})
            raise AssertionError("alice could create a configmap")
        except Forbidden:
            pass
