"""A small kubeconfig and in-cluster loader: server, TLS and credentials, as kubectl reads them.

Place in the pipeline: called by :func:`kuar.client.load_config` (the first step of every
client); its :class:`Loaded` becomes a :class:`kuar.client.ClientConfig`.

Why here and not a library: kuar used ``kubernetes_asyncio.config``, which imports the whole
generated API client (~30 MiB of an idle operator's ~90 MiB RSS) only to read a kubeconfig;
lightkube's loader brings httpx and its models; no well-kept, dependency-free loader exists
(docs/decisions/0018-kubeconfig-loader.md). This module covers what users' kubeconfigs hold:

- ``$KUBECONFIG`` with several files (merged as kubectl does: the first file to define a name
  wins; ``current-context`` from the first file that sets it), relative paths resolved against
  the file that names them;
- clusters: ``server``, ``certificate-authority(-data)``, ``insecure-skip-tls-verify``
  (``tls-server-name`` names the certificate to expect; ``proxy-url`` is refused with a clear
  error);
- users: ``client-certificate(-data)`` + ``client-key(-data)``, ``token``, ``tokenFile``
  (read again on every request), ``username``/``password`` (basic auth), and ``exec``
  credential plugins (``client.authentication.k8s.io/v1`` and ``v1beta1``; the token is cached
  until its ``expirationTimestamp`` and the plugin run again after; client certificates from
  the plugin are used for the connection);
- in-cluster: ``KUBERNETES_SERVICE_HOST``/``PORT``, the service-account token (read again on
  every request, so rotated tokens are picked up) and CA.

Caveats: ``auth-provider`` entries (the legacy OIDC/GCP/Azure plugins) are not read here:
:func:`kuar.client.load_config` hands such kubeconfigs to ``kubernetes_asyncio`` (imported only
then). An exec plugin that needs a terminal (``interactiveMode: Always``) is refused. No secret
is ever logged or put in an error message or ``repr``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where a pod finds its service-account token, CA and namespace."""

EXEC_TIMEOUT = 60.0
"""Seconds an exec credential plugin may take."""


class KubeconfigError(Exception):
    """The configuration cannot be used.

    The message names the file and the entry, never a secret.
    """


@dataclass(frozen=True)
class Loaded:
    """What a kubeconfig context or the in-cluster environment resolves to."""

    server: str
    """Base URL of the API server, without a trailing slash."""
    ssl_context: ssl.SSLContext | None = field(repr=False)
    """TLS settings (``None`` for plain http)."""
    token: Callable[[], Awaitable[str | None]] = field(repr=False)
    """The ``Authorization`` header's value source (``Bearer ...`` or ``Basic ...``)."""
    namespace: str = "default"
    """The context's namespace (the pod's, in a cluster)."""
    uses_auth_provider: bool = False
    """The user entry has an ``auth-provider`` (not handled here)."""
    tls_server_name: str | None = None
    """The cluster's ``tls-server-name``: the name sent as SNI and checked against the
    server's certificate instead of the URL's host."""


async def _none() -> str | None:
    return None


def kubeconfig_paths(explicit: str | os.PathLike[str] | None) -> list[Path]:
    """The kubeconfig files to read; empty for in-cluster.

    The explicit path, else ``$KUBECONFIG`` (several, ``:``-separated), else
    ``~/.kube/config`` when it exists.
    """
    if explicit:
        return [Path(explicit)]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    default = Path("~/.kube/config").expanduser()
    return [default] if default.exists() else []


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise KubeconfigError(f"kubeconfig {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"kubeconfig {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KubeconfigError(f"kubeconfig {path} is not a mapping")
    return data


def _absolute(entry: dict[str, Any], keys: tuple[str, ...], base: Path) -> dict[str, Any]:
    """``entry`` with the file paths under ``keys`` made absolute against ``base``."""
    out = dict(entry)
    for key in keys:
        value = out.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            out[key] = str(base / value)
    return out


def merge(paths: list[Path]) -> dict[str, Any]:
    """Read and merge kubeconfig files as kubectl does (first definition of a name wins)."""
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}}
    current: str | None = None
    file_keys = {"clusters": ("certificate-authority",),
                 "users": ("client-certificate", "client-key", "tokenFile"),
                 "contexts": ()}
    for path in paths:
        if not path.exists():
            if len(paths) == 1:
                raise KubeconfigError(f"kubeconfig {path} does not exist")
            continue  # kubectl skips missing files of a $KUBECONFIG list
        data = _read(path)
        current = current or data.get("current-context") or None
        for kind, inner in (("clusters", "cluster"), ("users", "user"),
                            ("contexts", "context")):
            for item in data.get(kind) or []:
                if not isinstance(item, dict) or "name" not in item:
                    raise KubeconfigError(f"kubeconfig {path}: an entry of {kind} has no name")
                body = item.get(inner) or {}
                if not isinstance(body, dict):
                    raise KubeconfigError(f"kubeconfig {path}: {kind} {item['name']!r} is "
                                          "not a mapping")
                body = _absolute(body, file_keys[kind], path.parent)
                if kind == "users" and isinstance(body.get("exec"), dict):
                    body["exec"] = {**body["exec"], "_base": str(path.parent)}
                merged[kind].setdefault(item["name"], body)
    merged["current-context"] = current
    return merged


def _pem(entry: dict[str, Any], key: str, what: str) -> bytes | None:
    """The PEM bytes of ``key-data`` (base64) or of the file at ``key``."""
    data = entry.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(data, validate=False)
        except (ValueError, TypeError) as exc:
            raise KubeconfigError(f"{what}: {key}-data is not base64") from exc
    path = entry.get(key)
    if path:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise KubeconfigError(f"{what}: cannot read {key} {path}: "
                                  f"{exc.strerror or exc}") from exc
    return None


def _load_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes, what: str) -> None:
    """Load a client certificate and key held in memory.

    ``ssl`` only reads files: they go to a private temporary folder, removed right after.
    """
    with tempfile.TemporaryDirectory(prefix="kuar-cert-") as folder:
        cert_path, key_path = Path(folder) / "tls.crt", Path(folder) / "tls.key"
        for path, content in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(content)
        try:
            ctx.load_cert_chain(str(cert_path), str(key_path))
        except ssl.SSLError as exc:
            raise KubeconfigError(f"{what}: the client certificate or key is invalid "
                                  f"({exc.reason or exc})") from exc


def ssl_context(cluster: dict[str, Any], cert: bytes | None, key: bytes | None,
                what: str) -> ssl.SSLContext:
    """A TLS 1.2+ context for ``cluster``, with the client certificate when there is one.

    It trusts the cluster's CA only, as client-go does (the system's roots only when the
    kubeconfig names no CA; nothing, when it says ``insecure-skip-tls-verify``). Not loading
    the system's ~150 roots beside the cluster's CA also saves ~1.5 MiB of RSS per process.
    """
    ca = _pem(cluster, "certificate-authority", what)
    if ca:
        try:
            ctx = ssl.create_default_context(cadata=ca.decode())
        except (ssl.SSLError, UnicodeDecodeError) as exc:
            raise KubeconfigError(f"{what}: the certificate authority is invalid") from exc
    else:
        ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cluster.get("insecure-skip-tls-verify"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert and key:
        _load_chain(ctx, cert, key, what)
    return ctx


@dataclass
class ExecPlugin:
    """An exec credential plugin: runs the command and caches its ExecCredential."""

    config: dict[str, Any]
    """The user's ``exec`` entry."""
    cluster: dict[str, Any]
    """The cluster entry (passed to the plugin when ``provideClusterInfo`` is set)."""
    what: str
    """Names the user in error messages."""
    _status: dict[str, Any] | None = field(default=None, repr=False)
    _expires: float | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def _argv_env(self) -> tuple[list[str], dict[str, str]]:
        command = self.config.get("command")
        if not command:
            raise KubeconfigError(f"{self.what}: exec has no command")
        if self.config.get("interactiveMode") == "Always":
            raise KubeconfigError(f"{self.what}: the exec plugin needs a terminal "
                                  "(interactiveMode: Always)")
        base = self.config.get("_base")
        if base and os.sep in command and not Path(command).is_absolute():
            command = str(Path(base) / command)
        env = dict(os.environ)
        for item in self.config.get("env") or []:
            env[str(item["name"])] = str(item["value"])
        spec: dict[str, Any] = {"interactive": False}
        if self.config.get("provideClusterInfo"):
            spec["cluster"] = {k: v for k, v in {
                "server": self.cluster.get("server"),
                "certificate-authority-data": self.cluster.get("certificate-authority-data"),
                "insecure-skip-tls-verify": self.cluster.get("insecure-skip-tls-verify"),
            }.items() if v}
        api = self.config.get("apiVersion") or "client.authentication.k8s.io/v1"
        env["KUBERNETES_EXEC_INFO"] = json.dumps(
            {"apiVersion": api, "kind": "ExecCredential", "spec": spec})
        return [command, *(str(a) for a in self.config.get("args") or [])], env

    def _parse(self, out: bytes) -> dict[str, Any]:
        try:
            cred = json.loads(out)
        except ValueError as exc:
            raise KubeconfigError(f"{self.what}: the exec plugin's output is not "
                                  "JSON") from exc
        status = cred.get("status") if isinstance(cred, dict) else None
        if not isinstance(status, dict):
            raise KubeconfigError(f"{self.what}: the exec plugin gave no status")
        if not status.get("token") and not status.get("clientCertificateData"):
            raise KubeconfigError(f"{self.what}: the exec plugin gave neither a token nor a "
                                  "client certificate")
        expires = status.get("expirationTimestamp")
        self._expires = None
        if expires:
            try:
                stamp = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
            except ValueError as exc:
                raise KubeconfigError(f"{self.what}: the exec plugin's expirationTimestamp "
                                      "is not RFC 3339") from exc
            self._expires = stamp.timestamp()
        return status

    def run_sync(self) -> dict[str, Any]:
        """Run the plugin now (at load time, where no loop may run yet); its status."""
        import subprocess

        argv, env = self._argv_env()
        try:
            out = subprocess.run(argv, env=env, capture_output=True, timeout=EXEC_TIMEOUT,
                                 stdin=subprocess.DEVNULL, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KubeconfigError(f"{self.what}: cannot run exec plugin {argv[0]}: "
                                  f"{exc}") from exc
        if out.returncode != 0:
            tail = out.stderr.decode(errors="replace").strip()[-300:]
            raise KubeconfigError(f"{self.what}: exec plugin {argv[0]} exited with "
                                  f"{out.returncode}: {tail}")
        self._status = self._parse(out.stdout)
        return self._status

    async def _run(self) -> dict[str, Any]:
        argv, env = self._argv_env()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), EXEC_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise KubeconfigError(f"{self.what}: cannot run exec plugin {argv[0]}: "
                                  f"{exc}") from exc
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip()[-300:]
            raise KubeconfigError(f"{self.what}: exec plugin {argv[0]} exited with "
                                  f"{proc.returncode}: {tail}")
        return self._parse(out)

    async def token(self) -> str | None:
        """The plugin's token, run again once it has expired (10 s early)."""
        async with self._lock:
            stale = self._expires is not None and time.time() > self._expires - 10
            if self._status is None or stale:
                self._status = await self._run()
            value = self._status.get("token")
            return f"Bearer {value}" if value else None


def _file_token(path: str, what: str) -> Callable[[], Awaitable[str | None]]:
    async def token() -> str | None:
        try:
            value = Path(path).read_text().strip()
        except OSError as exc:
            raise KubeconfigError(f"{what}: cannot read the token file {path}: "
                                  f"{exc.strerror or exc}") from exc
        return f"Bearer {value}" if value else None

    return token


def _fixed(value: str) -> Callable[[], Awaitable[str | None]]:
    async def token() -> str | None:
        return value

    return token


def from_kubeconfig(paths: list[Path], context: str | None = None) -> Loaded:
    """Resolve ``context`` (default: the current one) of the merged ``paths``."""
    config = merge(paths)
    where = ", ".join(str(p) for p in paths)
    name = context or config["current-context"]
    if not name:
        raise KubeconfigError(f"kubeconfig {where}: no current-context and none asked for")
    ctx = config["contexts"].get(name)
    if ctx is None:
        raise KubeconfigError(f"kubeconfig {where}: no context {name!r}")
    cluster = config["clusters"].get(ctx.get("cluster"))
    if cluster is None:
        raise KubeconfigError(f"kubeconfig {where}: context {name!r} names cluster "
                              f"{ctx.get('cluster')!r}, which is not defined")
    user_name = ctx.get("user")
    user = config["users"].get(user_name, {}) if user_name else {}
    what = f"kubeconfig {where}, user {user_name!r}"
    server = str(cluster.get("server") or "").rstrip("/")
    if not server.startswith(("https://", "http://")):
        raise KubeconfigError(f"kubeconfig {where}: cluster {ctx.get('cluster')!r} has no "
                              "http(s) server")
    namespace = str(ctx.get("namespace") or "default")
    if user.get("auth-provider"):
        return Loaded(server, None, _none, namespace, uses_auth_provider=True)

    cert, key = _pem(user, "client-certificate", what), _pem(user, "client-key", what)
    token: Callable[[], Awaitable[str | None]] = _none
    if isinstance(user.get("exec"), dict):
        plugin = ExecPlugin(user["exec"], cluster, what)
        status = plugin.run_sync()  # fail early, and get a client certificate if it gives one
        if status.get("clientCertificateData") and status.get("clientKeyData"):
            cert = str(status["clientCertificateData"]).encode()
            key = str(status["clientKeyData"]).encode()
        if status.get("token"):
            token = plugin.token
    elif user.get("token"):
        token = _fixed(f"Bearer {user['token']}")
    elif user.get("tokenFile"):
        token = _file_token(str(user["tokenFile"]), what)
    elif user.get("username") and user.get("password"):
        pair = f"{user['username']}:{user['password']}".encode()
        token = _fixed("Basic " + base64.b64encode(pair).decode())
    if (cert is None) != (key is None):
        raise KubeconfigError(f"{what}: a client certificate needs both the certificate and "
                              "the key")
    if cluster.get("proxy-url"):
        # refused rather than ignored: a silent direct connection is worse than an error
        raise KubeconfigError(f"kubeconfig {where}: cluster {ctx.get('cluster')!r} sets "
                              "proxy-url, which kuar does not support")
    server_name = cluster.get("tls-server-name") or None
    if server_name is not None and not isinstance(server_name, str):
        raise KubeconfigError(f"kubeconfig {where}: cluster {ctx.get('cluster')!r}: "
                              "tls-server-name is not a string")
    tls = ssl_context(cluster, cert, key, what) if server.startswith("https") else None
    return Loaded(server, tls, token, namespace, tls_server_name=server_name)


def in_cluster(folder: Path | None = None) -> Loaded:
    """The pod's own service account (``KUBERNETES_SERVICE_HOST``/``PORT``, token, CA)."""
    folder = folder or SERVICE_ACCOUNT
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get(
        "KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubeconfigError("no kubeconfig found and not in a cluster "
                              "(KUBERNETES_SERVICE_HOST/PORT are not set)")
    token_file, ca_file = folder / "token", folder / "ca.crt"
    for path in (token_file, ca_file):
        if not path.exists():
            raise KubeconfigError(f"no kubeconfig found and not in a cluster ({path} is "
                                  "missing)")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6
    what = "in-cluster configuration"
    ctx = ssl_context({"certificate-authority": str(ca_file)}, None, None, what)
    ns_file = folder / "namespace"
    namespace = "default"
    with contextlib.suppress(OSError):
        namespace = ns_file.read_text().strip() or "default"
    return Loaded(f"https://{host}:{port}", ctx, _file_token(str(token_file), what), namespace)
