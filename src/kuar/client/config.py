"""Where the API server is and how to authenticate: kubeconfig or in-cluster configuration.

Place in the pipeline: the first step of every client. :func:`load_config` reads the
configuration, :class:`kuar.client.Client` uses the resulting :class:`ClientConfig`.

Kubeconfig files (merged ``$KUBECONFIG`` lists, contexts, client certificates, tokens, token
files, exec credential plugins) and the in-cluster service account are read by
:mod:`kuar.client.kubeconfig`, a small focused loader (docs/decisions/0018-kubeconfig-loader.md:
``kubernetes_asyncio.config`` cost ~30 MiB of RSS because it imports the whole generated
client). A kubeconfig whose user has a legacy ``auth-provider`` (OIDC, GCP, Azure) is still
handed to ``kubernetes_asyncio.config``, imported only then (see
docs/decisions/0002-client-and-transport.md).

Guarantees: the ``Authorization`` value is asked for on every request, so rotated
service-account tokens and expiring exec-plugin tokens are refreshed; no secret is ever logged
or put in ``repr``.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TokenSource = Callable[[], Awaitable[str | None]]


async def _no_token() -> str | None:
    return None


class ConfigError(Exception):
    """The configuration could not be loaded (missing file, bad context, broken plugin)."""


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """A resolved connection: server URL, TLS context and a source of bearer tokens."""

    server: str
    """Base URL of the API server, e.g. ``https://127.0.0.1:6443``."""
    ssl_context: ssl.SSLContext | None = field(repr=False)
    """TLS settings: the cluster CA and the client certificate when there is one."""
    token: TokenSource = field(default=_no_token, repr=False)
    """Called before each request; returns the ``Authorization`` value (``Bearer ...`` or
    ``Basic ...``) or ``None``."""
    namespace: str = "default"
    """The namespace of the context (or of the pod, in a cluster)."""
    tls_server_name: str | None = None
    """The name sent as SNI and checked against the server's certificate, when it is not the
    server URL's host (kubeconfig ``tls-server-name``, client-go's ``TLSClientConfig.ServerName``):
    e.g. an API server reached by IP whose certificate names only ``kubernetes.default.svc``."""


def _ssl_context(cfg: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.cert_file and cfg.key_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    return ctx


def _from_library_config(cfg: Any, namespace: str) -> ClientConfig:
    async def token() -> str | None:
        value = await cfg.get_api_key_with_prefix("BearerToken", alias="authorization")
        return str(value) if value else None  # "Bearer ..." already

    return ClientConfig(
        server=str(cfg.host).rstrip("/"),
        ssl_context=_ssl_context(cfg) if str(cfg.host).startswith("https") else None,
        token=token,
        namespace=namespace,
        tls_server_name=getattr(cfg, "tls_server_name", None) or None,
    )


async def load_config(
    kubeconfig: str | os.PathLike[str] | None = None, *, context: str | None = None
) -> ClientConfig:
    """Load a configuration the way kubectl does.

    Order: the explicit ``kubeconfig`` path, then ``$KUBECONFIG`` (several files merged), then
    ``~/.kube/config``, then the in-cluster service account. Raises :class:`ConfigError` with a
    readable reason.
    """
    from kuar.client import kubeconfig as loader

    paths = loader.kubeconfig_paths(kubeconfig)
    try:
        # in a thread: an exec credential plugin runs here once, and may take seconds
        loaded = await (asyncio.to_thread(loader.from_kubeconfig, paths, context) if paths
                        else asyncio.to_thread(loader.in_cluster))
    except loader.KubeconfigError as exc:
        raise ConfigError(str(exc)) from exc
    if loaded.uses_auth_provider:
        return await _load_with_library(paths, context)
    return ClientConfig(server=loaded.server, ssl_context=loaded.ssl_context,
                        token=_config_errors(loaded.token), namespace=loaded.namespace,
                        tls_server_name=loaded.tls_server_name)


def _config_errors(source: TokenSource) -> TokenSource:
    """``source``, its :class:`~kuar.client.kubeconfig.KubeconfigError` as :class:`ConfigError`."""
    from kuar.client.kubeconfig import KubeconfigError

    async def token() -> str | None:
        try:
            return await source()
        except KubeconfigError as exc:
            raise ConfigError(str(exc)) from exc

    return token


async def _load_with_library(paths: list[Path], context: str | None) -> ClientConfig:
    """A kubeconfig with a legacy ``auth-provider`` user: ``kubernetes_asyncio`` reads it."""
    from kubernetes_asyncio import client as kclient
    from kubernetes_asyncio import config as kconfig

    cfg = kclient.Configuration()
    path = os.pathsep.join(str(p) for p in paths)
    try:
        loader = await kconfig.load_kube_config(
            config_file=path if len(paths) == 1 else None, context=context,
            client_configuration=cfg, persist_config=False,
        )
    except (kconfig.ConfigException, OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot load kubeconfig {path}: {exc}") from exc
    ns = str((loader.current_context or {}).get("context", {}).get("namespace") or "default")
    return _from_library_config(cfg, ns)
