"""A local node for one test: started, then stopped and its Node object deleted."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from kuar.client import Client
from kuar.testing.localnode import LocalNode, LocalNodeSettings


@contextlib.asynccontextmanager
async def running_node(client: Client, settings: LocalNodeSettings) -> AsyncIterator[LocalNode]:
    """A started :class:`LocalNode`; on exit it is stopped and its Node object deleted."""
    local = LocalNode(client, settings)
    await local.start()
    try:
        yield local
    finally:
        await local.stop()
        await client.request("DELETE", f"/api/v1/nodes/{settings.name}")
