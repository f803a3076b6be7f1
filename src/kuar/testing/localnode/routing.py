"""Service routing of the local node: pod addresses, the Service map, and ``publish``.

Place in the pipeline: owned by :class:`~kuar.testing.localnode.LocalNode`. The pods part
(:mod:`.pods`) takes addresses from it and asks for a namespace's Service map when a Pod
starts; tests and demos register local backends with :meth:`Routing.expose` or
:meth:`Routing.publish`. Plays the part of cluster DNS plus kube-proxy.

Networking without packets to private addresses: the API rejects loopback addresses in
EndpointSlices, and this machine only reaches loopback. Pods get addresses from a private pod
range for the API's sake; nothing is ever sent to them. Instead the node keeps a table
``address:port -> 127.0.0.1:port`` (pods' container ports, and backends registered with
:meth:`Routing.expose`). :meth:`Routing.resolve_map` turns it into a map from every Service
name form (``svc``, ``svc.ns``, ``svc.ns.svc``, ``svc.ns.svc.cluster.local``, and the
ClusterIP) and port of one namespace to the local address of one ready endpoint.

Caveats: the map is a snapshot (taken when a Pod starts) and uses one endpoint per Service
port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from kuar.client import Api, Client
from kuar.models.core.v1 import Service, ServicePort, ServiceSpec
from kuar.models.discovery.v1 import Endpoint, EndpointConditions, EndpointPort, EndpointSlice
from kuar.resources import ObjectMeta

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class AddressPool:
    """The pod range: the first address is the node's, the rest go to Pods and backends."""

    def __init__(self, cidr: str) -> None:
        """Split ``cidr`` into the node's address and a pool of free ones."""
        self.cidr = cidr
        hosts = ipaddress.ip_network(cidr).hosts()
        self.node_ip = str(next(hosts))
        self._free = [str(ip) for ip in hosts]

    def take(self) -> str | None:
        """A free address, or ``None`` when the range is used up."""
        return self._free.pop(0) if self._free else None

    def give_back(self, address: str) -> None:
        """Return an address taken with :meth:`take`."""
        self._free.append(address)


class Routing:
    """The table ``address:port -> 127.0.0.1:port`` and the Service map built from it."""

    def __init__(self, client: Client, addresses: AddressPool) -> None:
        """Route nothing yet; ``addresses`` is shared with the pods part."""
        self.client = client
        self.addresses = addresses
        self._routes: dict[str, str] = {}

    def expose(self, address: str, port: int, local_port: int) -> None:
        """Route ``address:port`` (e.g. an EndpointSlice address) to ``127.0.0.1:local_port``."""
        self._routes[f"{address}:{port}"] = f"127.0.0.1:{local_port}"

    def forget(self, address: str) -> None:
        """Drop every route of ``address`` (its Pod is gone)."""
        for key in [k for k in self._routes if k.startswith(f"{address}:")]:
            del self._routes[key]

    def allocate_address(self) -> str:
        """A free address of the pod range, e.g. for a backend registered with :meth:`expose`."""
        address = self.addresses.take()
        if address is None:
            raise RuntimeError(f"the local node's pod range {self.addresses.cidr} is used up")
        return address

    async def publish(
        self, namespace: str, name: str, local_port: int, *, port: int = 80,
        target_port: int = 8080, port_name: str = "http", field_manager: str = "kuar-localnode",
    ) -> None:
        """Publish a process on ``127.0.0.1:local_port`` as Service ``namespace/name``.

        A selector-less Service (port ``port``), an EndpointSlice with one address of the pod
        range, and the route from that address to the local port.
        """
        address = self.allocate_address()
        self.expose(address, target_port, local_port)
        service = Service(
            metadata=ObjectMeta(name=name, namespace=namespace),
            spec=ServiceSpec(ports=[ServicePort(name=port_name, port=port,
                                                target_port=target_port)]),
        )
        endpoints = EndpointSlice(
            metadata=ObjectMeta(name=f"{name}-local", namespace=namespace,
                                labels={SERVICE_NAME_LABEL: name}),
            address_type="IPv4",
            endpoints=[Endpoint(addresses=[address], conditions=EndpointConditions(ready=True))],
            ports=[EndpointPort(name=port_name, port=target_port, protocol="TCP")],
        )
        await Api(self.client, Service).apply(service, field_manager=field_manager, force=True)
        await Api(self.client, EndpointSlice).apply(endpoints, field_manager=field_manager,
                                                     force=True)

    async def resolve_map(self, namespace: str) -> dict[str, str]:
        """Every Service name form and port of ``namespace`` -> a ready endpoint's local address."""
        local = dict(self._routes)
        services = await Api(self.client, Service).list(namespace=namespace)
        slices = await Api(self.client, EndpointSlice).list(namespace=namespace)
        by_service: dict[str, list[EndpointSlice]] = {}
        for item in slices.items:
            owner = (item.metadata.labels or {}).get(SERVICE_NAME_LABEL)
            if owner:
                by_service.setdefault(owner, []).append(item)
        result: dict[str, str] = {}
        for svc in services.items:
            spec = svc.spec or ServiceSpec()
            name = svc.name
            for port in spec.ports or []:
                target = _endpoint_for(by_service.get(name, []), port, local)
                if target is None:
                    continue
                hosts = [name, f"{name}.{namespace}", f"{name}.{namespace}.svc",
                         f"{name}.{namespace}.svc.cluster.local"]
                if spec.cluster_ip and spec.cluster_ip != "None":
                    hosts.append(spec.cluster_ip)
                for host in hosts:
                    result[f"{host}:{port.port}"] = target
        return result


def _endpoint_for(
    slices: Iterable[EndpointSlice], service_port: ServicePort, local: Mapping[str, str]
) -> str | None:
    """The local address of the first ready endpoint serving ``service_port``."""
    for item in slices:
        for port in item.ports or []:
            if (port.name or "") != (service_port.name or ""):
                continue
            for endpoint in item.endpoints or []:
                if endpoint.conditions is not None and endpoint.conditions.ready is False:
                    continue
                for address in endpoint.addresses:
                    mapped = local.get(f"{address}:{port.port}")
                    if mapped:
                        return mapped
    return None
