"""Installing generated CRDs on the shared control plane (used by several test modules)."""

from __future__ import annotations

from typing import Any

from kuar.client import Client, apply_manifests
from kuar.resources import CustomResource, crd_for


async def install(client: Client, *classes: type[CustomResource]) -> dict[str, Any]:
    """Server-side apply the CRD of ``classes`` and wait until it is Established."""
    crd = crd_for(*classes)
    await apply_manifests(client, [crd], field_manager="kuar-tests")
    return crd
