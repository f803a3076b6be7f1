"""API discovery: which resource (plural, scope, URL) serves a given apiVersion and kind.

Place in the pipeline: used by the manifest applier and by untyped access to resolve a kind to
its URL, and by ``kuar generate models`` (with :func:`openapi_v3` and :func:`server_version`).
Known as the RESTMapper and the discovery client in client-go and ``kube::discovery`` in
kube-rs.

Guarantees: a group-version is fetched once and cached; a miss refetches that group-version
once, so kinds added by a CRD a moment ago are found. Errors: an unknown group-version or kind
raises :class:`UnknownKind` with the apiVersion and kind in its message.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from kuar.client.errors import NotFound
from kuar.client.transport import Client
from kuar.resources.info import ResourceInfo

__all__ = [
    "Discovery",
    "ResourceInfo",
    "UnknownKind",
    "extension_groups",
    "openapi_v3",
    "server_version",
    "split_api_version",
]

_GROUP_VERSION = re.compile(r"^(api/v1|apis/[^/]+/[^/]+)$")


class UnknownKind(LookupError):
    """The API server serves no resource for this apiVersion and kind."""


def split_api_version(api_version: str) -> tuple[str, str]:
    """``'apps/v1'`` -> ``('apps', 'v1')``; ``'v1'`` -> ``('', 'v1')``."""
    group, _, version = api_version.rpartition("/")
    return group, version


class Discovery:
    """A cache of the API server's resource lists, one entry per group-version."""

    def __init__(self, client: Client) -> None:
        """Create an empty cache bound to ``client``."""
        self._client = client
        self._cache: dict[str, dict[str, ResourceInfo]] = {}

    async def _fetch(self, api_version: str) -> dict[str, ResourceInfo]:
        group, version = split_api_version(api_version)
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            body = await self._client.request("GET", path)
        except NotFound:
            return {}
        kinds: dict[str, ResourceInfo] = {}
        for res in body.get("resources", []):
            if "/" in res["name"]:  # a subresource such as pods/status
                continue
            kinds[res["kind"]] = ResourceInfo(
                group, version, res["kind"], res["name"], bool(res["namespaced"])
            )
        self._cache[api_version] = kinds
        return kinds

    async def resources(self, api_version: str) -> list[ResourceInfo]:
        """Every resource (no subresources) the server lists for ``api_version``, fetched now."""
        return list((await self._fetch(api_version)).values())

    async def resolve(self, api_version: str, kind: str) -> ResourceInfo:
        """Return the resource serving ``kind`` in ``api_version``; refetch once on a miss."""
        kinds = self._cache.get(api_version)
        if kinds is None or kind not in kinds:
            kinds = await self._fetch(api_version)
        if kind not in kinds:
            raise UnknownKind(f'the server has no resource for kind "{kind}" in "{api_version}"')
        return kinds[kind]


async def server_version(client: Client) -> str:
    """The API server's ``gitVersion`` (``v1.36.3``)."""
    body = await client.request("GET", "/version")
    return str(body.get("gitVersion", "unknown"))


async def extension_groups(client: Client) -> set[str]:
    """API groups that are not built in: served by CRDs or by aggregated API servers."""
    crds = await client.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    groups = {str(crd["spec"]["group"]) for crd in crds.get("items") or []}
    services = await client.request("GET", "/apis/apiregistration.k8s.io/v1/apiservices")
    groups.update(str(s["spec"].get("group", "")) for s in services.get("items") or []
                  if s["spec"].get("service"))  # a Service behind it: not the API server's own
    return groups


async def openapi_v3(
    client: Client, *, exclude_groups: set[str] | frozenset[str] = frozenset()
) -> dict[str, dict[str, Any]]:
    """The OpenAPI v3 document of every group-version, by path (``api/v1``, ``apis/apps/v1``).

    Other documents of the index (``version``, ``.well-known/...``) are left out, and so are
    the groups in ``exclude_groups`` (see :func:`extension_groups`).
    """
    index = await client.request("GET", "/openapi/v3")
    paths = sorted(
        p for p in index.get("paths", {})
        if _GROUP_VERSION.match(p)
        and (p.split("/")[1] if p.startswith("apis/") else "") not in exclude_groups
    )
    docs = await asyncio.gather(*(
        client.request("GET", index["paths"][p]["serverRelativeURL"]) for p in paths
    ))
    return dict(zip(paths, docs, strict=True))
