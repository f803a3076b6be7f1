"""A real local Kubernetes control plane: etcd, kube-apiserver and optional controllers.

Place in the pipeline: the bottom of every behaviour test, benchmark and the demo. Known as
``envtest`` in controller-runtime. Binaries come from :mod:`kuar.testing.assets`.

Guarantees:
- Every process binds to 127.0.0.1 on a free port and has its own folder under one temporary
  root (``kuar-cp-*``, with an ``owner.pid``); :meth:`ControlPlane.stop` ends only the
  processes it started (each with its process group) and removes the root. A root left by a
  SIGKILLed run is removed by the next start once its owner pid is gone
  (:mod:`kuar.testing.tempdirs`).
- :meth:`ControlPlane.start` either returns with kube-apiserver answering ``/readyz`` (and
  the optional controller-manager and scheduler healthy) or raises :class:`StartError` within
  ``start_timeout`` seconds, naming the process, the reason (missing binary, port taken, exited,
  not ready in time) and the end of its log. It never hangs; on failure nothing is left running.
- Users are client certificates signed by the control plane's own CA; the admin is in
  ``system:masters``; :meth:`ControlPlane.add_user` makes unprivileged users for RBAC tests.
- Service accounts: the API server signs tokens with the plane's own key (issuer
  ``https://127.0.0.1:<port>/``), so the TokenRequest API gives any ServiceAccount a token,
  bound to a Pod if asked (deleting the Pod invalidates it, within the API server's 10 s
  token-cache). With the controller-manager, the ``default`` ServiceAccount and the
  ``kube-root-ca.crt`` ConfigMap (the CA that signs the serving certificate:
  ``--root-ca-file``) appear in every namespace, and the ServiceAccount admission plugin adds
  the ``kube-api-access-*`` projected volume to Pods; without it that plugin is off (no
  ``default`` ServiceAccount would exist to admit Pods).
Caveats: the API server's watch cache serves recent resourceVersions from memory; to make a
watch from a compacted version fail with 410 right after :meth:`compact`, start with
``watch_cache=False`` (or restart the API server).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kuar.base.files import write_private
from kuar.base.pki import CertificateAuthority, KeyPair
from kuar.testing.assets import Assets, AssetsError, find_assets, install
from kuar.testing.pki import service_account_keys
from kuar.testing.process import Process
from kuar.testing.tempdirs import owned_tempdir

SERVICE_CIDR = "10.0.0.0/24"


class StartError(RuntimeError):
    """A control-plane process did not start; the message says which, why, and its log."""


@dataclass(frozen=True, kw_only=True)
class ControlPlaneSettings:
    """How to run the local control plane."""

    with_controller_manager: bool = False
    """Run kube-controller-manager (Jobs -> Pods, garbage collection, namespace deletion)."""
    with_scheduler: bool = False
    """Run kube-scheduler (binds Pods to registered Nodes)."""
    start_timeout: float = 60.0
    """Seconds each process gets to become ready; a cold machine needs ~5-10 s per process."""
    assets: Path | None = None
    """Folder holding the binaries; ``None`` finds (and if needed builds) them."""
    build: bool = True
    """Build missing binaries (minutes, once) instead of failing."""
    apiserver_port: int | None = None
    """A fixed port for kube-apiserver; ``None`` picks a free one."""
    watch_cache: bool = True
    """kube-apiserver's watch cache; off makes etcd compaction visible to watches at once."""
    apiserver_flags: tuple[str, ...] = ()
    """Extra ``--flag=value`` arguments for kube-apiserver."""
    root_dir: Path | None = None
    """Parent folder of the temporary root; ``None`` uses the system temp folder."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class _Component:
    name: str
    process: Process
    port: int
    ready_url: str
    context: ssl.SSLContext | None = field(default=None, repr=False)


class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager, kube-scheduler) on this machine.

    Use as a context manager (``with ControlPlane() as cp:``) or call :meth:`start` and
    :meth:`stop`. :attr:`kubeconfig` is the admin kubeconfig once started.
    """

    def __init__(self, settings: ControlPlaneSettings | None = None) -> None:
        """Prepare (nothing runs until :meth:`start`)."""
        self.settings = settings or ControlPlaneSettings()
        self.root: Path | None = None
        self.assets: Assets | None = None
        self._components: dict[str, _Component] = {}
        self._ca: CertificateAuthority | None = None
        self._admin: KeyPair | None = None
        self.etcd_url = ""
        self.server = ""

    # --- paths -------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        assert self.root is not None, "control plane not started"
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def kubeconfig(self) -> Path:
        """Path of the admin (``system:masters``) kubeconfig."""
        return self._dir("users") / "admin.kubeconfig"

    @property
    def ca_pem(self) -> bytes:
        """The CA that signs the API server's serving certificate and all client users."""
        assert self._ca is not None, "control plane not started"
        return self._ca.cert_pem

    @property
    def processes(self) -> dict[str, Process]:
        """The processes started so far, by component name."""
        return {name: c.process for name, c in self._components.items()}

    # --- users -------------------------------------------------------------------------
    def kubeconfig_dict(self, user: str, pair: KeyPair) -> dict[str, Any]:
        """A kubeconfig (as a dict) for a client-certificate user of this control plane."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "kuar-local", "cluster": {
                    "server": self.server, "certificate-authority-data": _b64(self.ca_pem)}}
            ],
            "users": [
                {"name": user, "user": {
                    "client-certificate-data": _b64(pair.cert_pem),
                    "client-key-data": _b64(pair.key_pem)}}
            ],
            "contexts": [
                {"name": f"{user}@kuar-local", "context": {
                    "cluster": "kuar-local", "user": user, "namespace": "default"}}
            ],
            "current-context": f"{user}@kuar-local",
        }

    def add_user(self, name: str, groups: list[str] | tuple[str, ...] = ()) -> Path:
        """Create a client-certificate user and return the path of its kubeconfig.

        The user has no rights until RBAC grants them (unless a group such as
        ``system:masters`` does).
        """
        assert self._ca is not None, "control plane not started"
        pair = self._ca.issue_client(name, list(groups))
        path = self._dir("users") / f"{name.replace(':', '_')}.kubeconfig"
        write_private(path, yaml.safe_dump(self.kubeconfig_dict(name, pair),
                                           sort_keys=False).encode())
        return path

    def kubectl(self, kubeconfig: Path | None = None) -> list[str]:
        """The real kubectl with this plane's kubeconfig (admin by default) and a cache of its own.

        kubectl caches API discovery per host:port under ``~/.kube/cache`` for minutes; control
        planes reuse random ports, so a shared cache would answer for an earlier plane (for
        example, still listing ``loadtests`` before this plane has the CRD).
        """
        assert self.assets is not None, "control plane not started"
        return [str(self.assets.path("kubectl")), f"--kubeconfig={kubeconfig or self.kubeconfig}",
                f"--cache-dir={self._dir('kubectl-cache')}"]

    def write_kubeconfig(self, path: Path) -> Path:
        """Write the admin kubeconfig to ``path`` (mode 0600) and return it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, self.kubeconfig.read_bytes())
        return path

    # --- life cycle --------------------------------------------------------------------
    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start every component in order; see the module's guarantees."""
        s = self.settings
        if s.assets is not None:
            self.assets = Assets(s.assets)
        else:
            found = find_assets()
            if found is None and not s.build:
                raise StartError(
                    "control-plane binaries are not installed: run `kuar controlplane install`"
                )
            try:
                self.assets = found or install()
            except AssetsError as exc:
                raise StartError(str(exc)) from exc
        try:
            binaries = {n: self.assets.path(n) for n in self._needed()}
        except AssetsError as exc:
            raise StartError(str(exc)) from exc
        self.root = owned_tempdir("kuar-cp-", s.root_dir)
        try:
            self._write_pki()
            self._start_etcd(binaries["etcd"])
            self._start_apiserver(binaries["kube-apiserver"])
            if s.with_controller_manager:
                self._start_controller_manager(binaries["kube-controller-manager"])
            if s.with_scheduler:
                self._start_scheduler(binaries["kube-scheduler"])
        except BaseException:
            self.stop()
            raise

    def _needed(self) -> list[str]:
        names = ["etcd", "kube-apiserver"]
        if self.settings.with_controller_manager:
            names.append("kube-controller-manager")
        if self.settings.with_scheduler:
            names.append("kube-scheduler")
        return names

    def stop(self) -> None:
        """Stop every process this control plane started (reverse order) and remove its folder.

        Safe to call more than once and after a failed start.
        """
        for component in reversed(list(self._components.values())):
            component.process.stop()
        self._components.clear()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    # --- pki ---------------------------------------------------------------------------
    def _write_pki(self) -> None:
        pki = self._dir("pki")
        self._ca = CertificateAuthority.create("kuar-local-ca")
        serving = self._ca.issue_serving(
            ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local"],
            ["127.0.0.1", "10.0.0.1"],
            common_name="kube-apiserver", validity=dt.timedelta(days=365),
        )
        sa = service_account_keys()
        self._admin = self._ca.issue_client("kuar-admin", ["system:masters"])
        files = {
            "ca.crt": self._ca.cert_pem,
            "apiserver.crt": serving.cert_pem,
            "apiserver.key": serving.key_pem,
            "sa.pub": sa.cert_pem,
            "sa.key": sa.key_pem,
            "admin.crt": self._admin.cert_pem,
            "admin.key": self._admin.key_pem,
        }
        for name, data in files.items():
            write_private(pki / name, data)

    def _admin_context(self) -> ssl.SSLContext:
        pki = self._dir("pki")
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return ctx

    # --- processes ---------------------------------------------------------------------
    def _launch(
        self, name: str, argv: list[str], port: int, ready_url: str,
        context: ssl.SSLContext | None, fixed_port: bool = False,
    ) -> None:
        if _port_in_use(port):
            raise StartError(f"{name}: port {port} on 127.0.0.1 is already taken")
        process = Process(name, argv, self._dir(name))
        component = _Component(name, process, port, ready_url, context)
        self._components[name] = component
        process.start()
        self._wait_ready(component)

    def _wait_ready(self, component: _Component) -> None:
        deadline = time.monotonic() + self.settings.start_timeout
        last_error = "no answer yet"
        while True:
            code = component.process.exit_code()
            if code is not None:
                reason = f"exited with code {code}"
                if component.process.log_contains("address already in use"):
                    reason = f"port {component.port} on 127.0.0.1 is already taken"
                raise StartError(
                    f"{component.name} did not start: {reason}; last log lines:\n"
                    f"{component.process.log_tail()}"
                )
            try:
                with urllib.request.urlopen(  # noqa: S310 - our own 127.0.0.1 URL
                    component.ready_url, context=component.context, timeout=2
                ) as resp:
                    if resp.status == 200:
                        return
                    last_error = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last_error = str(getattr(exc, "reason", exc))
            if time.monotonic() > deadline:
                raise StartError(
                    f"{component.name} not ready in {self.settings.start_timeout:.0f} s "
                    f"({component.ready_url}: {last_error}); last log lines:\n"
                    f"{component.process.log_tail()}"
                )
            time.sleep(0.1)

    def _start_etcd(self, binary: Path) -> None:
        client_port, peer_port = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client_port}"
        data = self._dir("etcd") / "data"
        argv = [
            str(binary),
            f"--data-dir={data}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync=true",  # a throw-away store: durability buys nothing here
            "--log-level=warn",
        ]
        self._launch("etcd", argv, client_port, f"{self.etcd_url}/health", None)

    def _apiserver_argv(self, binary: Path, port: int) -> list[str]:
        pki = self._dir("pki")
        s = self.settings
        argv = [
            str(binary),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self._dir('kube-apiserver') / 'certs'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            "--tls-min-version=VersionTLS12",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            f"--service-account-issuer=https://127.0.0.1:{port}/",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            f"--watch-cache={'true' if s.watch_cache else 'false'}",
        ]
        if not s.with_controller_manager:
            # Without the service-account controller no "default" ServiceAccount appears, and
            # this plugin would then refuse every Pod (envtest does the same).
            argv.append("--disable-admission-plugins=ServiceAccount")
        argv.extend(s.apiserver_flags)
        return argv

    def _start_apiserver(self, binary: Path) -> None:
        port = self.settings.apiserver_port or free_port()
        self.server = f"https://127.0.0.1:{port}"
        assert self._admin is not None
        write_private(self.kubeconfig, yaml.safe_dump(
            self.kubeconfig_dict("kuar-admin", self._admin), sort_keys=False).encode())
        self._launch(
            "kube-apiserver", self._apiserver_argv(binary, port), port,
            f"{self.server}/readyz", self._admin_context(),
        )

    def _component_kubeconfig(
        self, name: str, user: str, groups: tuple[str, ...] = ()
    ) -> Path:
        assert self._ca is not None
        pair = self._ca.issue_client(user, groups)
        path = self._dir(name) / "kubeconfig"
        write_private(path, yaml.safe_dump(self.kubeconfig_dict(user, pair),
                                           sort_keys=False).encode())
        return path

    @staticmethod
    def _insecure_context() -> ssl.SSLContext:
        # The components' /healthz answers with a self-signed certificate made at start; this
        # context is used only for that local readiness probe.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _start_controller_manager(self, binary: Path) -> None:
        # With one shared identity (no per-controller service-account credentials), the
        # built-in system:kube-controller-manager role is too narrow for the Job and garbage
        # collector controllers, so the controller-manager runs as an admin here.
        kubeconfig = self._component_kubeconfig(
            "kube-controller-manager", "system:kube-controller-manager", ("system:masters",)
        )
        pki = self._dir("pki")
        port = free_port()
        argv = [
            str(binary),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self._dir('kube-controller-manager') / 'certs'}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=false",
            "--controllers=*",
            "--leader-elect=false",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--concurrent-gc-syncs=20",
        ]
        self._launch(
            "kube-controller-manager", argv, port, f"https://127.0.0.1:{port}/healthz",
            self._insecure_context(),
        )

    def _start_scheduler(self, binary: Path) -> None:
        kubeconfig = self._component_kubeconfig("kube-scheduler", "system:kube-scheduler")
        port = free_port()
        argv = [
            str(binary),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self._dir('kube-scheduler') / 'certs'}",
            "--leader-elect=false",
        ]
        self._launch(
            "kube-scheduler", argv, port, f"https://127.0.0.1:{port}/healthz",
            self._insecure_context(),
        )

    # --- faults ------------------------------------------------------------------------
    def restart_apiserver(self, *, kill: bool = False, down_for: float = 0.0) -> None:
        """Stop kube-apiserver (SIGKILL if ``kill``), wait ``down_for`` s, start it again.

        etcd, and with it every object, is kept; the port and certificates stay the same.
        """
        component = self._components["kube-apiserver"]
        if kill:
            component.process.kill()
        else:
            component.process.stop()
        time.sleep(down_for)
        deadline = time.monotonic() + 10
        while _port_in_use(component.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        component.process.start()
        self._wait_ready(component)

    def stop_apiserver(self, *, kill: bool = False) -> None:
        """Stop kube-apiserver only (for fault tests); :meth:`start_apiserver` brings it back."""
        component = self._components["kube-apiserver"]
        (component.process.kill if kill else component.process.stop)()

    def start_apiserver(self) -> None:
        """Start kube-apiserver again after :meth:`stop_apiserver`, on the same port."""
        component = self._components["kube-apiserver"]
        deadline = time.monotonic() + 10
        while _port_in_use(component.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        component.process.start()
        self._wait_ready(component)

    def _etcd(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(  # noqa: S310 - our own 127.0.0.1 URL
            f"{self.etcd_url}{path}", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            result: dict[str, Any] = json.loads(resp.read())
            return result

    def etcd_revision(self) -> int:
        """Etcd's current revision (the newest resourceVersion the API server can hand out)."""
        header = self._etcd("/v3/kv/range", {"key": _b64(b"/")})["header"]
        return int(header["revision"])

    def compact(self) -> int:
        """Compact etcd up to its current revision; returns that revision.

        Afterwards a watch or list from an older resourceVersion gets 410 Gone (see the
        module's caveat on the watch cache).
        """
        revision = self.etcd_revision()
        self._etcd("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision
