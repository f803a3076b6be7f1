"""Where the API server is and how to authenticate: kubeconfig or in-cluster configuration.

Place in the pipeline: the first step of every client. :func:`load_config` reads the
configuration, :class:`kuar.client.Client` uses the resulting :class:`ClientConfig`.

Parsing is not hand-written: kubeconfig files (contexts, client certificates, tokens, exec
credential plugins, OIDC) and the in-cluster service-account token (with refresh) are loaded by
``kubernetes_asyncio.config``, a well-kept library (see
docs/decisions/0002-client-and-transport.md). kuar only turns its result into an
:class:`ssl.SSLContext` and an ``Authorization`` header source.

Guarantees: the bearer token is asked for on every request, so rotated service-account tokens
and expiring exec-plugin tokens are refreshed by the library; no secret is ever logged or put in
``repr``.
"""

from __future__ import annotations

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
    """Called before each request; returns the bearer token or ``None``."""
    namespace: str = "default"
    """The namespace of the context (or of the pod, in a cluster)."""


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
        return str(value) if value else None

    return ClientConfig(
        server=str(cfg.host).rstrip("/"),
        ssl_context=_ssl_context(cfg) if str(cfg.host).startswith("https") else None,
        token=token,
        namespace=namespace,
    )


async def load_config(
    kubeconfig: str | os.PathLike[str] | None = None, *, context: str | None = None
) -> ClientConfig:
    """Load a configuration the way kubectl does.

    Order: the explicit ``kubeconfig`` path, then ``$KUBECONFIG``, then ``~/.kube/config``,
    then the in-cluster service account. Raises :class:`ConfigError` with a readable reason.
    """
    from kubernetes_asyncio import client as kclient
    from kubernetes_asyncio import config as kconfig

    path = kubeconfig or os.environ.get("KUBECONFIG") or None
    if path is None and Path("~/.kube/config").expanduser().exists():
        path = str(Path("~/.kube/config").expanduser())
    cfg = kclient.Configuration()
    if path is None:
        try:
            kconfig.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except kconfig.ConfigException as exc:
            raise ConfigError(f"no kubeconfig found and not in a cluster: {exc}") from exc
        ns_file = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        ns = ns_file.read_text().strip() if ns_file.exists() else "default"
        return _from_library_config(cfg, ns)
    if not Path(path).exists():
        raise ConfigError(f"kubeconfig {path} does not exist")
    try:
        loader = await kconfig.load_kube_config(
            config_file=str(path), context=context, client_configuration=cfg,
            persist_config=False,
        )
    except (kconfig.ConfigException, OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot load kubeconfig {path}: {exc}") from exc
    ns = str((loader.current_context or {}).get("context", {}).get("namespace") or "default")
    return _from_library_config(cfg, ns)
