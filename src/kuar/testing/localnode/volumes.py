"""Pod volumes on the local node: configMap, secret, projected, downwardAPI, emptyDir as files.

Place in the pipeline: used by :mod:`.pods` between the checks of a Pod and the start of its
processes. :func:`plan_volumes` and :func:`container_mounts` check the spec (nothing is read or
written yet); :class:`PodVolumes` reads the objects from the API, writes the files under the
pod's own folder (``<pod folder>/_volumes/<volume name>``), keeps projected service-account
tokens fresh while the pod runs, and removes everything when the pod ends;
:class:`PathRewriter` turns the container's mount paths into those local folders.

Guarantees:
- only ``configMap``, ``secret``, ``projected`` (sources ``serviceAccountToken``,
  ``configMap``, ``secret``, ``downwardAPI``), ``downwardAPI`` (``metadata.name``,
  ``namespace``, ``uid``, ``labels``, ``annotations``, one label or annotation) and
  ``emptyDir`` are honoured; any other volume (``hostPath``, PVCs, CSI, ...) or source refuses
  the whole Pod with reason ``UnsupportedVolume`` naming the volume, before anything is read
  or started: a hostPath is never honoured;
- every file stays inside the pod's folder: volume names, item paths and ``subPath`` must be
  plain relative names (no ``..``, no absolute path), mount paths plain absolute paths other
  than ``/`` (else ``ForbiddenPath``);
- all objects are read first and files written only then: a missing non-``optional``
  ConfigMap, Secret, key or ServiceAccount (or an API error) raises :class:`MountPending`
  naming it, with nothing written, and the pods part retries;
- modes: ``items[].mode``, else ``defaultMode``, as the API server defaulted it (0644). Every
  process of a pod runs as this machine's user, so group and other bits would only open a file
  to *other* local users: Secret and token files keep the owner bits of their mode only
  (0644 becomes 0600; 0400 stays 0400); ConfigMap and downward-API files keep their mode. The
  node's folder itself is 0700 (:func:`~kuar.testing.tempdirs.owned_tempdir`);
- a projected ``serviceAccountToken`` comes from the TokenRequest API, bound to the Pod object
  (name and uid: deleting the pod invalidates it), with the source's ``audience`` (the API
  server's own audiences when empty) and ``expirationSeconds``; it is requested again, and the
  file replaced atomically, once 80 % of its life has passed or 24 hours after it was issued,
  whichever is first (the kubelet's rule, without its jitter); a failed refresh is retried
  every 10 s while the old token is kept.

Caveats: processes cannot mount anything, so a program finds its files only through the
rewritten paths in its args and env (:class:`PathRewriter`): a program that hard-codes
``/var/run/secrets/kubernetes.io/serviceaccount`` does not find the token, and should take the
folder from a flag or an env variable. ConfigMap and Secret volumes are a snapshot taken when
the pod starts (a kubelet updates them); ``readOnly`` is not enforced; an ``emptyDir``'s
``medium: Memory`` and ``sizeLimit`` are ignored (a plain folder); ``subPathExpr`` and
downward-API ``resourceFieldRef`` are refused.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import posixpath
import re
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kuar.base.files import write_private
from kuar.client import ApiError, Client, NotFound, TransportError

log = logging.getLogger("kuar.testing.localnode")

VOLUMES_DIR = "_volumes"
"""The pod folder's sub-folder for volumes: not a DNS label, so never a container's folder."""
KINDS = ("configMap", "secret", "projected", "downwardAPI", "emptyDir")
"""The volume kinds the local node honours."""
PROJECTED_SOURCES = ("serviceAccountToken", "configMap", "secret", "downwardAPI")
"""The sources of a projected volume the local node honours."""
DEFAULT_MODE = 0o644
"""The API server's default for ``defaultMode`` (420)."""
OWNER_BITS = 0o700
TOKEN_MAX_AGE = 24 * 3600.0
"""A kubelet refreshes a token after 24 hours even when it lives longer."""
TOKEN_RETRY = 10.0
"""Seconds before a failed token refresh is tried again."""
_DOWNWARD_FIELDS = ("metadata.name", "metadata.namespace", "metadata.uid",
                    "metadata.labels", "metadata.annotations")


class Refused(Exception):
    """A pod asks for something the local node does not allow: ``reason``, ``message``."""

    def __init__(self, reason: str, message: str) -> None:
        """``reason`` goes to the pod status's reason, ``message`` to its message."""
        super().__init__(message)
        self.reason = reason
        self.message = message


class MountPending(Exception):
    """A volume cannot be set up yet: a missing object or key, or the API failed; retry later."""

    def __init__(self, volume: str, detail: str) -> None:
        """``volume`` is the volume's name, ``detail`` what is missing (no secret value)."""
        self.volume = volume
        self.detail = detail
        self.message = f'MountVolume.SetUp failed for volume "{volume}" : {detail}'
        super().__init__(self.message)


def is_plain_absolute(path: object) -> bool:
    """Whether ``path`` is an absolute path other than ``/`` without ``.``, ``..`` or ``//``."""
    return (isinstance(path, str) and path.startswith("/") and path != "/"
            and posixpath.normpath(path) == path and "\0" not in path)


def is_plain_relative(path: object) -> bool:
    """Whether ``path`` is a non-empty relative path with no ``.``, ``..`` or ``//`` parts."""
    return (isinstance(path, str) and bool(path) and not path.startswith("/")
            and "\0" not in path and all(p not in ("", ".", "..") for p in path.split("/")))


def _kind(volume: Mapping[str, Any]) -> str:
    kinds = [k for k in volume if k != "name"]
    return kinds[0] if len(kinds) == 1 else "/".join(kinds) or "no source"


def _unsupported(name: str, what: str) -> Refused:
    return Refused("UnsupportedVolume", f"volume {name!r}: {what} is not supported by kuar's "
                   f"local node (it honours {', '.join(KINDS)}); nothing was started")


def _check_downward(name: str, items: Iterable[Mapping[str, Any]]) -> None:
    for item in items:
        if item.get("resourceFieldRef"):
            raise _unsupported(name, "a downwardAPI resourceFieldRef "
                               f"({item['resourceFieldRef'].get('resource')})")
        path = str((item.get("fieldRef") or {}).get("fieldPath", ""))
        if path not in _DOWNWARD_FIELDS and not re.fullmatch(
                r"metadata\.(labels|annotations)\['[^']*'\]", path):
            raise _unsupported(name, f"the downwardAPI field {path!r}")


def plan_volumes(spec: Mapping[str, Any], folder: Path) -> dict[str, Path]:
    """Check every volume of a pod spec; return volume name -> its folder under ``folder``.

    Raises :class:`Refused` (``UnsupportedVolume``) for a kind or source the node does not
    honour, naming the volume.
    """
    planned: dict[str, Path] = {}
    for volume in spec.get("volumes") or []:
        name = volume.get("name")
        if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
            raise Refused("ForbiddenPath", f"volume name {name!r} is not a plain name")
        kind = _kind(volume)
        if kind not in KINDS:
            raise _unsupported(name, f"a {kind} volume")
        source = volume[kind] or {}
        if kind == "downwardAPI":
            _check_downward(name, source.get("items") or [])
        if kind == "projected":
            for projection in source.get("sources") or []:
                what = _kind(projection)
                if what not in PROJECTED_SOURCES:
                    raise _unsupported(name, f"the projected source {what}")
                if what == "downwardAPI":
                    _check_downward(name, (projection[what] or {}).get("items") or [])
        planned[name] = folder / name
    return planned


@dataclass(frozen=True)
class Mount:
    """One ``volumeMounts`` entry of a container: its declared path and the local one."""

    mount_path: str
    """``mountPath`` as the pod declares it."""
    local: Path
    """The folder (or, with ``subPath``, file) on this machine that stands for it."""


def container_mounts(container: Mapping[str, Any], volumes: Mapping[str, Path]) -> list[Mount]:
    """The container's mounts, checked; raises :class:`Refused` for a path the node refuses."""
    name = container.get("name", "")
    if container.get("volumeDevices"):
        raise Refused("UnsupportedVolume", f"container {name}: volumeDevices are not supported "
                      "by kuar's local node")
    mounts = []
    for mount in container.get("volumeMounts") or []:
        volume, path = mount.get("name"), mount.get("mountPath")
        if volume not in volumes:
            raise Refused("UnsupportedVolume", f"container {name}: mount of unknown volume "
                          f"{volume!r}")
        if not is_plain_absolute(path):
            raise Refused("ForbiddenPath", f"container {name}: mountPath {path!r} of volume "
                          f"{volume!r} must be a plain absolute path other than '/'")
        if mount.get("subPathExpr"):
            raise Refused("UnsupportedVolume", f"container {name}: subPathExpr of volume "
                          f"{volume!r} is not supported by kuar's local node")
        local = volumes[volume]
        sub = mount.get("subPath")
        if sub:
            if not is_plain_relative(sub):
                raise Refused("ForbiddenPath", f"container {name}: subPath {sub!r} of volume "
                              f"{volume!r} must be a plain relative path")
            local = local / sub
        mounts.append(Mount(path, local))
    return mounts


class PathRewriter:
    """Replaces a container's mount paths in a string with their local folders.

    A mount path is replaced where it stands as a whole path: at the start of the string or
    after a character that cannot be part of a path (``=``, ``:``, a space, ...), and followed
    by the end, ``/`` or such a character. The longest mount path wins (``/a/b`` before
    ``/a``), and a path inside another (``/x/etc/a`` for ``/etc/a``) is left alone.
    """

    def __init__(self, mounts: Iterable[Mount]) -> None:
        """Rewrite the mount paths of ``mounts``."""
        self._local = {m.mount_path: str(m.local) for m in mounts}
        paths = sorted(self._local, key=len, reverse=True)
        self._pattern = (re.compile(r"(?<![\w.\-/])(" + "|".join(map(re.escape, paths))
                                    + r")(?=$|/|[^\w.\-])") if paths else None)

    def __call__(self, text: str) -> str:
        """``text`` with every mount path replaced by its local path."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self._local[m.group(1)], text)


def go_quote(value: str) -> str:
    """``value`` quoted as Go's ``%q`` does (the kubelet's label and annotation files)."""
    escapes = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}
    out = []
    for ch in value:
        if ch in escapes:
            out.append(escapes[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def field_ref(pod: Mapping[str, Any], path: str, ip: str = "", host_ip: str = "") -> str:
    """The downward API: a ``fieldRef`` path of the pod, as a kubelet resolves it.

    ``metadata.labels`` and ``metadata.annotations`` (volumes only) are ``key="value"`` lines,
    sorted; a path the node does not know gives ``""``.
    """
    meta = pod["metadata"]
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
        "status.podIP": ip,
        "status.hostIP": host_ip,
    }
    if path in simple:
        return str(simple[path])
    for prefix, source in (("metadata.annotations", "annotations"), ("metadata.labels", "labels")):
        if path == prefix:
            values = meta.get(source) or {}
            return "\n".join(f"{k}={go_quote(str(values[k]))}" for k in sorted(values))
        if path.startswith(f"{prefix}['") and path.endswith("']"):
            return str((meta.get(source) or {}).get(path[len(prefix) + 2 : -2], ""))
    return ""


def refresh_time(issued: float, expires: float) -> float:
    """When a kubelet requests a token again: at 80 % of its life, or 24 h after issue.

    ``issued`` and ``expires`` are epoch seconds (``expires``: the TokenRequest's
    ``status.expirationTimestamp``, which may lie a year ahead when the API server extends a
    3607 s token).
    """
    return min(issued + 0.8 * (expires - issued), issued + TOKEN_MAX_AGE)


@dataclass
class _File:
    path: Path
    data: bytes
    mode: int


@dataclass
class _Token:
    """A projected service-account token to keep fresh."""

    volume: str
    path: Path
    mode: int
    audience: str
    expiration_seconds: int
    refresh_at: float = 0.0


class PodVolumes:
    """The volumes of one Pod: read from the API, written under ``folder``, kept fresh.

    :meth:`prepare` before the processes start; :meth:`keep_tokens_fresh` while they run;
    :meth:`remove` when the pod ends.
    """

    def __init__(self, client: Client, pod: Mapping[str, Any], folders: Mapping[str, Path],
                 folder: Path) -> None:
        """``folders`` comes from :func:`plan_volumes` (volume name -> folder in ``folder``)."""
        self.client = client
        self.pod = pod
        self.folders = folders
        self.folder = folder
        self._tokens: list[_Token] = []
        self._objects: dict[tuple[str, str], dict[str, Any] | None] = {}

    @property
    def namespace(self) -> str:
        """The pod's namespace."""
        return str(self.pod["metadata"]["namespace"])

    # --- reading -----------------------------------------------------------------------
    async def _get(self, volume: str, kind: str, name: str) -> dict[str, Any] | None:
        key = (kind, name)
        if key not in self._objects:
            try:
                self._objects[key] = await self.client.request(
                    "GET", f"/api/v1/namespaces/{self.namespace}/{kind}/{name}")
            except NotFound:
                self._objects[key] = None
            except (ApiError, TransportError) as exc:
                raise MountPending(volume, f"cannot read {kind[:-1]} {name!r}: {exc}") from exc
        return self._objects[key]

    async def _keyed(self, volume: str, kind: str, source: Mapping[str, Any],
                     default_mode: int, base: Path) -> list[_File]:
        """The files of a configMap or secret source (``kind``: configmaps, secrets)."""
        name = str(source.get("name" if kind == "configmaps" else "secretName",
                              source.get("name", "")))
        what = "configmap" if kind == "configmaps" else "secret"
        obj = await self._get(volume, kind, name)
        optional = bool(source.get("optional"))
        if obj is None:
            if optional:
                return []
            raise MountPending(volume, f'{what} "{name}" not found')
        data: dict[str, bytes] = {}
        if kind == "configmaps":
            data.update({k: str(v).encode() for k, v in (obj.get("data") or {}).items()})
            data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        else:
            data.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
        items = source.get("items") or [{"key": k, "path": k} for k in sorted(data)]
        files = []
        for item in items:
            key, path = str(item.get("key", "")), item.get("path")
            if key not in data:
                if optional:
                    continue
                raise MountPending(volume, f'{what} "{name}" has no key "{key}"')
            mode = int(item.get("mode", default_mode))
            if kind == "secrets":
                mode &= OWNER_BITS
            files.append(_File(self._inside(volume, base, path), data[key], mode))
        return files

    def _downward(self, volume: str, items: Iterable[Mapping[str, Any]], default_mode: int,
                  base: Path) -> list[_File]:
        return [_File(self._inside(volume, base, item.get("path")),
                      field_ref(self.pod, str(item["fieldRef"]["fieldPath"])).encode(),
                      int(item.get("mode", default_mode)))
                for item in items]

    def _inside(self, volume: str, base: Path, path: object) -> Path:
        if not is_plain_relative(path):
            raise Refused("ForbiddenPath", f"volume {volume!r}: item path {path!r} must be a "
                          "plain relative path")
        return base / str(path)

    async def _request_token(self, token: _Token) -> tuple[str, float]:
        """A bound token for the pod's ServiceAccount: (token, refresh time)."""
        meta, spec = self.pod["metadata"], self.pod["spec"]
        account = str(spec.get("serviceAccountName") or "default")
        body: dict[str, Any] = {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": token.expiration_seconds,
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                        "name": meta["name"], "uid": meta["uid"]}},
        }
        if token.audience:
            body["spec"]["audiences"] = [token.audience]
        issued = time.time()
        try:
            answer = await self.client.request(
                "POST", f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{account}/token",
                body=body)
        except NotFound as exc:
            raise MountPending(token.volume, f'serviceaccount "{account}" not found') from exc
        except (ApiError, TransportError) as exc:
            raise MountPending(token.volume, f"token request for serviceaccount {account!r} "
                               f"failed: {exc}") from exc
        expires = dt.datetime.fromisoformat(
            str(answer["status"]["expirationTimestamp"]).replace("Z", "+00:00")).timestamp()
        return str(answer["status"]["token"]), refresh_time(issued, expires)

    async def _source(self, volume: str, kind: str, source: Mapping[str, Any], mode: int,
                      base: Path) -> list[_File]:
        """The files of one volume, or of one source of a projected volume (``kind``)."""
        if kind == "configMap":
            return await self._keyed(volume, "configmaps", source, mode, base)
        if kind == "secret":
            return await self._keyed(volume, "secrets", source, mode, base)
        if kind == "downwardAPI":
            return self._downward(volume, source.get("items") or [], mode, base)
        if kind == "serviceAccountToken":  # requested after every object is read
            self._tokens.append(_Token(
                volume, self._inside(volume, base, source.get("path")), mode & OWNER_BITS,
                str(source.get("audience") or ""), int(source.get("expirationSeconds") or 3600)))
        return []  # emptyDir: only its folder

    async def _files(self) -> list[_File]:
        """Every file of every volume, read from the API; nothing is written here."""
        files: list[_File] = []
        self._tokens = []
        self._objects = {}  # read afresh on each attempt: a missing object may have appeared
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            kind, base = _kind(volume), self.folders[name]
            source = volume[kind] or {}
            mode = int(source.get("defaultMode", DEFAULT_MODE))
            parts = ([(_kind(p), p[_kind(p)] or {}) for p in source.get("sources") or []]
                     if kind == "projected" else [(kind, source)])
            for what, part in parts:
                files += await self._source(name, what, part, mode, base)
        for token in self._tokens:
            value, token.refresh_at = await self._request_token(token)
            files.append(_File(token.path, value.encode(), token.mode))
        return files

    # --- writing -----------------------------------------------------------------------
    async def prepare(self) -> None:
        """Read every object, then write every file; see the module's guarantees.

        Raises :class:`MountPending` (nothing written) or :class:`Refused`.
        """
        files = await self._files()
        self.remove()
        for folder in self.folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        for file in files:
            _write(file)

    def remove(self) -> None:
        """Remove every volume folder of the pod."""
        shutil.rmtree(self.folder, ignore_errors=True)

    async def keep_tokens_fresh(self) -> None:
        """Request each projected token again when it is due (:meth:`refresh`); until cancelled."""
        while self._tokens:
            due = min(t.refresh_at for t in self._tokens)
            await asyncio.sleep(max(0.0, due - time.time()))
            await self.refresh(time.time())

    async def refresh(self, at: float) -> int:
        """Request again every token due at ``at`` (epoch seconds); replace its file atomically.

        Returns how many were replaced. A failure keeps the old file and retries 10 s later.
        """
        done = 0
        for token in self._tokens:
            if token.refresh_at > at:
                continue
            try:
                value, refresh_at = await self._request_token(token)
                _write(_File(token.path, value.encode(), token.mode))
            except (MountPending, OSError) as exc:
                log.warning("pod %s/%s: token of volume %s not refreshed: %s",
                            self.namespace, self.pod["metadata"]["name"], token.volume, exc)
                token.refresh_at = time.time() + TOKEN_RETRY
                continue
            token.refresh_at = refresh_at
            done += 1
        return done

    @property
    def token_refresh_times(self) -> list[float]:
        """When each projected token is due to be requested again (epoch seconds)."""
        return [t.refresh_at for t in self._tokens]


def _write(file: _File) -> None:
    """Write atomically: born 0600, given its mode before it takes its place."""
    file.path.parent.mkdir(parents=True, exist_ok=True)
    write_private(file.path, file.data, mode=file.mode & 0o777)
