"""The local node's Node object: registration, Ready status, and its Lease in kube-node-lease.

Place in the pipeline: started first by :class:`~kuar.testing.localnode.LocalNode`, before the
pods part (:mod:`.pods`); kube-scheduler sees a Ready Node with capacity and binds Pods to it,
and the node-lifecycle controller of kube-controller-manager keeps it Ready while the Lease
is renewed (the kubelet's heartbeat).

Guarantees: :meth:`NodeAgent.register` creates the Node or reuses an existing one of the same
name, writes its status (capacity, a Ready condition, an InternalIP) and creates or renews the
Lease, owned by the Node. Caveats: renewal failures (an API server restarting) are logged and
retried on the next period, as a kubelet does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from kuar.client import AlreadyExists, Api, ApiError, Client, NotFound, TransportError
from kuar.models.coordination.v1 import Lease, LeaseSpec
from kuar.models.core.v1 import Node, NodeSpec
from kuar.resources import ObjectMeta, OwnerReference
from kuar.testing.localnode.settings import LocalNodeSettings

log = logging.getLogger("kuar.testing.localnode")

LEASE_NAMESPACE = "kube-node-lease"


def now() -> str:
    """The current time as a ``metav1.Time`` string."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeAgent:
    """Registers the Node and keeps its Lease fresh (the kubelet's node-status part)."""

    def __init__(self, client: Client, settings: LocalNodeSettings, node_ip: str) -> None:
        """Nothing is sent until :meth:`register`."""
        self.settings = settings
        self.node_ip = node_ip
        self._nodes = Api(client, Node, field_manager="kuar-localnode")
        self._leases = Api(client, Lease, namespace=LEASE_NAMESPACE,
                           field_manager="kuar-localnode")
        self._uid = ""

    def status(self) -> dict[str, Any]:
        """The Node's status: capacity, conditions, addresses and node info."""
        s = self.settings
        at = now()
        resources = {"cpu": s.cpu, "memory": s.memory, "pods": str(s.max_pods)}
        ready = {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "message": "kuar local node is ready", "lastHeartbeatTime": at,
                 "lastTransitionTime": at}
        return {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [ready] + [
                {"type": t, "status": "False", "reason": f"KubeletHas{r}",
                 "lastHeartbeatTime": at, "lastTransitionTime": at}
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

    async def register(self) -> None:
        """Create (or reuse) the Node, write its status, and create or renew its Lease."""
        s = self.settings
        node = Node(
            metadata=ObjectMeta(name=s.name, labels={
                "kubernetes.io/hostname": s.name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "kuar.dev/local-node": "true"}),
            spec=NodeSpec(pod_cidr=s.pod_cidr, pod_cidrs=[s.pod_cidr]),
        )
        try:
            created = await self._nodes.create(node)
        except AlreadyExists:
            created = await self._nodes.get(s.name)
        self._uid = created.metadata.uid or ""
        await self._nodes.patch_status(s.name, {"status": self.status()})
        await self.renew_lease()

    async def renew_lease(self) -> None:
        """Set the Lease's renewTime to now; create the Lease when it is missing."""
        s = self.settings
        spec = LeaseSpec(holder_identity=s.name, lease_duration_seconds=s.lease_duration,
                         renew_time=dt.datetime.now(dt.UTC))
        try:
            await self._leases.patch(s.name, {
                "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True)})
        except NotFound:
            await self._leases.create(Lease(
                metadata=ObjectMeta(name=s.name, owner_references=[OwnerReference(
                    api_version="v1", kind="Node", name=s.name, uid=self._uid)]),
                spec=spec,
            ))

    async def renew_forever(self) -> None:
        """Renew the Lease every ``renew_interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.settings.renew_interval)
            try:
                await self.renew_lease()
            except (ApiError, TransportError, OSError) as exc:  # the API server may be restarting
                log.warning("lease renewal failed: %s", exc)
