"""A local node: a Node object whose bound Pods run as processes on this machine.

Place in the pipeline: beside the control plane (:mod:`kuar.testing.controlplane`), for
development and tests only. kube-scheduler binds Pods to the Node it registers; it runs them
the way a kubelet would, but as local processes, and only for images the application gave it
a runner for (``LocalNodeSettings(runners={...})``). Known as a "virtual kubelet" elsewhere.

:class:`LocalNode` is the front; each concern has its own module:

- :mod:`.node`: registers the Node (capacity, Ready condition, an InternalIP) and renews its
  Lease in ``kube-node-lease`` so the node-lifecycle controller keeps it Ready;
- :mod:`.pods`: watches Pods bound to it (``spec.nodeName``), starts each container's process,
  reports ``pods/status`` (phase, podIP, conditions, container states, exit codes, termination
  messages), and on graceful deletion stops the processes and confirms the deletion;
- :mod:`.volumes`: pod volumes (configMap, secret, projected with a bound serviceAccountToken,
  downwardAPI, emptyDir) as files in the pod's folder, and the rewriting of mount paths;
- :mod:`.routing`: pod addresses, the table ``address:port -> 127.0.0.1:port``, the Service
  map a process receives in the environment variable ``settings.resolve_env`` (cluster DNS
  plus kube-proxy), and :meth:`LocalNode.publish`;
- :mod:`.settings`: :class:`LocalNodeSettings` and the :class:`Runner` contract (a program
  and its allow-lists of flags, file flags and env names).

Guarantees: a Pod whose image no runner knows ends in phase Failed with reason
``UnsupportedImage`` and a message naming the images it runs (or that no runner is
configured: the default). A Pod whose args, env or termination message path go beyond its
runner's allow-lists ends Failed (``ForbiddenArgs``, ``ForbiddenEnv``, ``ForbiddenPath``)
with nothing started; so does a volume it does not honour (``UnsupportedVolume``: hostPath,
PVCs, CSI, ...). A Pod whose ConfigMap, Secret or ServiceAccount is missing waits
``Pending`` (``ContainerCreating``, a ``FailedMount`` Warning Event naming it) until it
appears. Each process gets the in-cluster environment (``KUBERNETES_SERVICE_HOST``/``PORT``:
the API server) and finds its volumes at the local paths its args and env are rewritten to.
Every process started is stopped with its process group on deletion and on
:meth:`LocalNode.stop`, and the pod's files are removed.
Caveats: restartPolicy is treated as ``Never`` (no container restarts); the Service map is a
snapshot taken when the Pod starts and uses one endpoint per Service port; processes cannot
mount, so a program that hard-codes a mount path (``/var/run/secrets/...``) instead of taking
it from a flag or env variable does not find its files; ConfigMap and Secret volumes are a
snapshot; no probes or resource limits; containers start together (no init containers).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path

from kuar.client import Client
from kuar.testing.localnode.node import NodeAgent
from kuar.testing.localnode.pods import PodRunner
from kuar.testing.localnode.routing import AddressPool, Routing
from kuar.testing.localnode.settings import (
    CommandRunner,
    LocalNodeSettings,
    Runner,
    image_name,
)
from kuar.testing.tempdirs import owned_tempdir

__all__ = ["CommandRunner", "LocalNode", "LocalNodeSettings", "Runner", "image_name"]


class LocalNode:
    """Registers a Node and runs the Pods bound to it as local processes.

    ``async with LocalNode(client, settings) as node:`` or ``await node.start()`` /
    ``await node.stop()``.
    """

    def __init__(self, client: Client, settings: LocalNodeSettings | None = None) -> None:
        """Prepare the node; nothing is registered until :meth:`start`."""
        self.client = client
        self.settings = settings or LocalNodeSettings()
        self.routing = Routing(client, AddressPool(self.settings.pod_cidr))
        self.node_ip = self.routing.addresses.node_ip
        self._agent = NodeAgent(client, self.settings, self.node_ip)
        self._pods: PodRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._root: Path | None = None

    @property
    def name(self) -> str:
        """The Node's name."""
        return self.settings.name

    def expose(self, address: str, port: int, local_port: int) -> None:
        """Route ``address:port`` (e.g. an EndpointSlice address) to ``127.0.0.1:local_port``."""
        self.routing.expose(address, port, local_port)

    def allocate_address(self) -> str:
        """A free address of the pod range, e.g. for a backend registered with :meth:`expose`."""
        return self.routing.allocate_address()

    async def publish(
        self, namespace: str, name: str, local_port: int, *, port: int = 80,
        target_port: int = 8080, port_name: str = "http", field_manager: str = "kuar-localnode",
    ) -> None:
        """Publish a process on ``127.0.0.1:local_port`` as Service ``namespace/name``.

        A selector-less Service (port ``port``), an EndpointSlice with one address of the pod
        range, and the node's route from that address to the local port.
        """
        await self.routing.publish(namespace, name, local_port, port=port,
                                   target_port=target_port, port_name=port_name,
                                   field_manager=field_manager)

    async def __aenter__(self) -> LocalNode:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Register the Node and its Lease, then run Pods until :meth:`stop`.

        Returns once the Pods already bound to the node have been handled.
        """
        self._root = owned_tempdir("kuar-node-", self.settings.root_dir)
        await self._agent.register()
        self._pods = PodRunner(self.client, self.settings, self.routing, self._root)
        self._tasks = [
            asyncio.create_task(self._agent.renew_forever(), name="localnode-lease"),
            asyncio.create_task(self._pods.run(), name="localnode-pods"),
        ]
        await self._pods.ready.wait()

    async def stop(self) -> None:
        """Stop every process this node started and its background tasks; remove its folder."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._pods is not None:
            await self._pods.stop_all()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
