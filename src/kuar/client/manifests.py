"""Reading Kubernetes objects from YAML and applying them all-or-nothing.

Place in the pipeline: used by the CLI (``kuar apply``), the test environment (installing CRDs
and fixtures) and the demo. Objects go to the API server by server-side apply.

Guarantees:
- :func:`load_manifests` parses every document before anything is sent; a YAML error or an
  object without ``apiVersion``/``kind``/``metadata.name`` raises :class:`ManifestError` with
  the file and line, and nothing is applied.
- :func:`apply_manifests` first resolves every kind and dry-runs every object the server can
  already check; only when all of them pass does it apply them, in file order. Objects whose
  kind is defined by a CustomResourceDefinition in the same batch are checked locally (the kind
  must be defined there) and applied after that CRD is Established.
Caveat: the real applies are not one transaction: a server failure between two applies (for
example the API server dying) can leave the earlier ones applied. Server-side apply is
idempotent, so running the same command again completes the batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from kuar.client.discovery import Discovery, ResourceInfo, UnknownKind, split_api_version
from kuar.client.errors import ApiError
from kuar.client.transport import APPLY_PATCH, Client


class ManifestError(ValueError):
    """A manifest cannot be read or is not a valid Kubernetes object."""


def _describe(doc: dict[str, Any]) -> str:
    name = (doc.get("metadata") or {}).get("name", "?")
    return f"{doc.get('kind', '?')}/{name}"


def parse_manifests(text: str, *, source: str = "<input>") -> list[dict[str, Any]]:
    """Parse a multi-document YAML string into Kubernetes objects (``List`` kinds expanded)."""
    try:
        raw_docs = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ManifestError(f"{where}: invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source}: invalid YAML: {exc}") from exc
    docs: list[dict[str, Any]] = []
    for index, doc in enumerate(raw_docs, start=1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ManifestError(f"{source}: document {index} is not a mapping")
        items = doc.get("items") if str(doc.get("kind", "")).endswith("List") else [doc]
        for item in items or []:
            if not isinstance(item, dict):
                raise ManifestError(f"{source}: document {index} has an item that is not a mapping")
            missing = [k for k in ("apiVersion", "kind") if not isinstance(item.get(k), str)]
            meta = item.get("metadata")
            if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
                missing.append("metadata.name")
            if missing:
                raise ManifestError(
                    f"{source}: document {index} ({_describe(item)}) lacks {', '.join(missing)}"
                )
            docs.append(item)
    return docs


def load_manifests(path: str | Path) -> list[dict[str, Any]]:
    """Read and parse a YAML file (``-`` is not accepted here; read stdin yourself)."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ManifestError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{p}: cannot read: {exc}") from exc
    return parse_manifests(text, source=str(p))


def _crd_kinds(docs: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Map (apiVersion, kind) defined by CRDs in ``docs`` to the defining CRD."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in docs:
        if doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind")
        for version in spec.get("versions") or []:
            if version.get("served", True):
                out[(f"{spec.get('group')}/{version.get('name')}", str(kind))] = doc
    return out


async def wait_crd_established(client: Client, name: str, timeout: float = 30.0) -> None:
    """Wait until the CRD ``name`` has condition Established=True (or raise TimeoutError)."""
    deadline = time.monotonic() + timeout
    while True:
        crd = await client.request(
            "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        )
        conditions = (crd.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"CustomResourceDefinition {name} not Established in {timeout}s")
        await asyncio.sleep(0.1)


async def apply_object(
    client: Client,
    info: ResourceInfo,
    doc: dict[str, Any],
    *,
    namespace: str,
    field_manager: str,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Server-side apply one object (``force`` takes ownership of conflicting fields)."""
    ns = (doc.get("metadata") or {}).get("namespace") or namespace
    body = dict(doc)
    if info.namespaced:
        body["metadata"] = {**doc["metadata"], "namespace": ns}
    params: dict[str, str | bool | None] = {"fieldManager": field_manager, "force": True}
    if dry_run:
        params["dryRun"] = "All"
    result: dict[str, Any] = await client.request(
        "PATCH",
        info.path(ns if info.namespaced else None, doc["metadata"]["name"]),
        params=params,
        body=body,
        content_type=APPLY_PATCH,
    )
    return result


async def apply_manifests(
    client: Client,
    docs: list[dict[str, Any]],
    *,
    namespace: str = "default",
    field_manager: str = "kuar",
    discovery: Discovery | None = None,
) -> list[dict[str, Any]]:
    """Check every object, then apply them in order; see the module's guarantees.

    Raises :class:`ManifestError` (unknown kind) or :class:`ApiError` (the server refused an
    object in the dry run) before anything is applied.
    """
    discovery = discovery or Discovery(client)
    from_batch = _crd_kinds(docs)
    infos: list[ResourceInfo | None] = []
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        try:
            infos.append(await discovery.resolve(*key))
        except UnknownKind as exc:
            if key not in from_batch:
                raise ManifestError(f"{_describe(doc)}: {exc}") from exc
            infos.append(None)  # resolved after its CRD is applied
    for doc, info in zip(docs, infos, strict=True):
        if info is None:
            continue
        try:
            await apply_object(
                client, info, doc, namespace=namespace, field_manager=field_manager,
                dry_run=True,
            )
        except ApiError as exc:
            exc.message = f"{_describe(doc)}: {exc.message}"
            raise
    applied: list[dict[str, Any]] = []
    for doc, maybe_info in zip(docs, infos, strict=True):
        info = maybe_info
        if info is None:
            crd = from_batch[(doc["apiVersion"], doc["kind"])]
            await wait_crd_established(client, crd["metadata"]["name"])
            info = await discovery.resolve(doc["apiVersion"], doc["kind"])
        applied.append(
            await apply_object(
                client, info, doc, namespace=namespace, field_manager=field_manager
            )
        )
        if doc["kind"] == "CustomResourceDefinition" and split_api_version(
            doc["apiVersion"]
        )[0] == "apiextensions.k8s.io":
            await wait_crd_established(client, doc["metadata"]["name"])
    return applied
