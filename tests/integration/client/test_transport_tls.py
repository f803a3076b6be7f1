"""The transport on the real API server over TLS: a watch the server ends, a big body, reuse,
the certificate checked against kubeconfig's ``tls-server-name``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from kuar.client import Api, Client, TransportError, load_config
from kuar.models.core.v1 import ConfigMap
from kuar.resources import ObjectMeta
from kuar.testing import ControlPlane

pytestmark = pytest.mark.controlplane


async def test_watch_ended_by_timeout_seconds_ends_cleanly(kube_client: Client,
                                                            namespace: str) -> None:
    cms = Api(kube_client, ConfigMap, namespace=namespace)
    await cms.create(ConfigMap(metadata=ObjectMeta(name="seen"), data={"a": "1"}))
    listed = await cms.list()
    started = time.monotonic()
    events = []
    async with asyncio.timeout(30):
        async for event in cms.watch(resource_version="0", timeout_seconds=1):
            events.append(event)
    assert time.monotonic() - started < 20
    assert any(e.object.metadata.name == "seen" for e in events)
    # the connection the server ended cleanly serves the next requests
    assert [c.metadata.name for c in (await cms.list()).items] == \
        [c.metadata.name for c in listed.items]


async def test_a_large_body_round_trips_over_tls(kube_client: Client, namespace: str) -> None:
    cms = Api(kube_client, ConfigMap, namespace=namespace)
    data = {f"k{i}": "v" * 4096 for i in range(200)}  # ~800 KiB each way
    await cms.create(ConfigMap(metadata=ObjectMeta(name="big"), data=data))
    assert (await cms.get("big")).data == data


async def test_tls_server_name_is_the_name_checked(control_plane: ControlPlane,
                                                   tmp_path: Path) -> None:
    """kubeconfig ``tls-server-name``: the API server reached by IP, its certificate checked
    against that name (one of its SANs) instead of the IP; a name it lacks is refused."""
    config = yaml.safe_load(control_plane.kubeconfig.read_text())
    assert urlsplit(config["clusters"][0]["cluster"]["server"]).hostname == "127.0.0.1"
    for name, works in (("kubernetes.default.svc", True), ("api.elsewhere.example", False)):
        config["clusters"][0]["cluster"]["tls-server-name"] = name
        path = tmp_path / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        loaded = await load_config(path)
        assert loaded.tls_server_name == name
        client = Client(loaded)
        try:
            if works:
                assert (await client.request("GET", "/version"))["major"] == "1"
            else:
                with pytest.raises(TransportError, match="certificate"):
                    await client.request("GET", "/version")
        finally:
            await client.close()
