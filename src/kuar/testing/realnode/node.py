"""A real Kubernetes node on this machine: containerd + runc, CNI bridge, kubelet, kube-proxy.

Place in the pipeline: beside the process node (:mod:`kuar.testing.localnode`), for the tests
and demos that must run the project's images as containers: ``kuar up --node real``,
``kuar demo --node real`` and tests/e2e/realnode. It joins a running
:class:`~kuar.testing.ControlPlane` (with controller-manager and scheduler).

What runs (each a child process in its own process group, under one root folder
``kuar-rnode-*`` with an ``owner.pid``):
- containerd (Debian's 1.6, docs/decisions/0012-real-node-runtime.md) with runc, its own
  socket, folders, and network namespaces; images are imported, never pulled: the sandbox
  image ``kuar.dev/pause``, CoreDNS, and the archives named in the settings.
- a Linux bridge ``kuarbr0`` with the node's address (``10.244.0.1/24``); the bridge CNI
  plugin (Debian's, /usr/lib/cni) gives each pod an address on it. A route sends the Service
  range to the bridge, and two FORWARD rules drop anything between the bridge and any other
  interface, so pods reach only pods, Services and the node.
- socat relaying ``10.244.0.1:6443`` to the API server on 127.0.0.1 (pods cannot reach the
  host's loopback), published as Service ``default/kubernetes``'s endpoint.
- kube-proxy (iptables mode) and the kubelet, built by :mod:`.assets`; CoreDNS as a
  Deployment behind ``kube-system/kube-dns`` (10.0.0.10).

Guarantees: :meth:`RealNode.start` returns with the node Ready and CoreDNS answering, or
raises :class:`NodeError` (what failed, with the end of its log) after undoing everything.
:meth:`RealNode.stop` (also after a failed start, and safe twice) removes every pod sandbox and
container through the CRI (which tears down their network namespaces and CNI state), stops
the processes it started (by process group), runs ``kube-proxy --cleanup`` (its iptables
rules), deletes the bridge and the FORWARD rules, unmounts whatever is left under its root,
removes the kubelet's cgroups, and removes the root. The next start does the same for a root
whose owner died (SIGKILL). One real node per machine: the bridge name is fixed.
Caveats: needs root, Debian's containerd, runc, containernetworking-plugins, iptables, socat
(``make node-tools``). The kubelet's API answers anonymous requests on the node's bridge
address (closed to pods by the INPUT rules; the API server calls it for logs and exec); the
control plane must be started with :func:`plane_settings` so the API server reaches it there.
``net.ipv4.ip_forward`` is turned on while the node runs (pod -> Service -> pod is routed
through the node) and restored when it stops. Containers left by a SIGKILLed run (their shims
outlive containerd) are not found by the sweep; stop the node normally.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kuar.base.pki import CertificateAuthority
from kuar.testing.assets import AssetsError, Progress
from kuar.testing.controlplane import (
    SERVICE_CIDR,
    ControlPlane,
    ControlPlaneSettings,
    StartError,
    free_port,
)
from kuar.testing.process import Process
from kuar.testing.realnode import addons, config
from kuar.testing.realnode.assets import COREDNS_IMAGE, PAUSE_IMAGE, NodeAssets, install
from kuar.testing.tempdirs import OWNER_FILE, sweep_stale

PREFIX = "kuar-rnode-"
"""Prefix of the node's root folders in the temp folder."""
RULE_COMMENT = "kuar-realnode"
"""Comment on the node's own iptables rules (how stop finds exactly those)."""
TRUST_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
"""The Debian trust store path inside containers; the node mounts its bundle there."""
TOOLS = ("containerd", "ctr", "runc", "iptables", "ip", "socat")


APISERVER_FLAGS = ("--kubelet-preferred-address-types=InternalIP",)
"""kube-apiserver flags the node needs: reach the kubelet at its address on the bridge (for
logs, exec), never by looking its name up in the machine's DNS."""


def plane_settings(**overrides: Any) -> ControlPlaneSettings:
    """Control-plane settings for a real node: controller-manager, scheduler, the flags above."""
    values: dict[str, Any] = {"with_controller_manager": True, "with_scheduler": True,
                              "apiserver_flags": APISERVER_FLAGS, **overrides}
    return ControlPlaneSettings(**values)


class NodeError(StartError):
    """The real node could not start (or a tool it needs is missing); the message says why."""


@dataclass(frozen=True, kw_only=True)
class RealNodeSettings:
    """How to run the real node."""

    name: str = "kuar-real-node"
    """The Node object's name (and the kubelet's and kube-proxy's hostname)."""
    pod_cidr: str = "10.244.0.0/24"
    """The pods' addresses; the node itself takes the first (the bridge's gateway)."""
    bridge: str = "kuarbr0"
    """The Linux bridge the node creates (and deletes)."""
    cluster_dns: str = "10.0.0.10"
    """Service address of CoreDNS (inside the control plane's Service range)."""
    images: tuple[tuple[Path, str], ...] = ()
    """OCI archives to import, with the repository each is named under (no tag)."""
    start_timeout: float = 180.0
    """Seconds for containerd, kube-proxy, the kubelet (node Ready) and CoreDNS together."""
    root_dir: Path | None = None
    """Parent folder of the node's root; ``None`` uses the system temp folder."""


@dataclass(frozen=True)
class StartTimes:
    """Seconds each start step took (the bench prints them)."""

    steps: tuple[tuple[str, float], ...]

    @property
    def total(self) -> float:
        """All steps together."""
        return sum(seconds for _, seconds in self.steps)


def image_archives(image_dir: Path) -> tuple[tuple[Path, str], ...]:
    """The archives that ``kuar image build`` listed in ``image_dir/images.json``, with names.

    What :attr:`RealNodeSettings.images` takes; raises :class:`NodeError` when there is no
    images.json (run ``make images``).
    """
    try:
        record = json.loads((image_dir / "images.json").read_text())
    except (OSError, ValueError) as exc:
        raise NodeError(f"no readable images.json in {image_dir} ({exc}): run `make images`"
                        ) from exc
    return tuple((image_dir / one["archive"], one["name"]) for one in record["images"].values())


def _run(argv: Sequence[str], *, what: str, timeout: float = 60, check: bool = True,
         input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              check=False, input=input_text)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NodeError(f"{what} failed: {exc}") from exc
    if check and proc.returncode != 0:
        raise NodeError(f"{what} failed (exit {proc.returncode}): "
                        f"{(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, deepest first (from /proc/self/mountinfo)."""
    prefix = str(root)
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def _unmount_all(root: Path) -> None:
    for _ in range(3):  # stacked mounts (a tmpfs on a bind) need more than one pass
        points = _mounts_under(root)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _rss_kib(pid: int | None) -> int:
    if pid is None:
        return 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RealNode:
    """A kubelet + containerd node of a local :class:`~kuar.testing.ControlPlane`.

    Use as a context manager or call :meth:`start` and :meth:`stop`; both block (run them in a
    thread from async code).
    """

    def __init__(self, plane: ControlPlane, settings: RealNodeSettings | None = None) -> None:
        """Prepare (nothing runs until :meth:`start`)."""
        self.plane = plane
        self.settings = settings or RealNodeSettings()
        net = ipaddress.ip_network(self.settings.pod_cidr)
        self.gateway = str(net.network_address + 1)
        """The node's own address on the bridge (the pods' default gateway)."""
        self.root: Path | None = None
        self.assets: NodeAssets | None = None
        self.trust: CertificateAuthority | None = None
        """A CA that every container of the node trusts (its bundle is mounted over the
        image's Debian trust store): tests and the demo sign their https targets with it."""
        self.times = StartTimes(())
        self._procs: dict[str, Process] = {}
        self._host: list[list[str]] = []  # commands that undo what start changed on the host
        self._ip_forward: str | None = None
        self._cgroups_before: set[Path] = set()

    # --- paths and tools ---------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        assert self.root is not None, "node not started"
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def socket(self) -> Path:
        """Containerd's socket."""
        return self._dir("containerd") / "containerd.sock"

    def crictl(self, *args: str) -> list[str]:
        """Argv of crictl against this node's containerd."""
        assert self.assets is not None, "node not started"
        return [str(self.assets.path("crictl")), f"--runtime-endpoint=unix://{self.socket}",
                f"--image-endpoint=unix://{self.socket}", "--timeout=20s", *args]

    def ctr(self, *args: str) -> list[str]:
        """Argv of ctr in containerd's ``k8s.io`` namespace (the CRI's)."""
        return ["ctr", f"--address={self.socket}", "--namespace=k8s.io", *args]

    @property
    def processes(self) -> dict[str, Process]:
        """The node's processes, by name (containerd, socat, kube-proxy, kubelet)."""
        return dict(self._procs)

    def rss_kib(self) -> dict[str, int]:
        """Resident memory of each node process, in KiB (containers not included)."""
        return {name: _rss_kib(proc.pid) for name, proc in self._procs.items() if proc.running}

    def issue_serving(self, names: list[str]) -> tuple[bytes, bytes]:
        """A serving certificate and key for ``names``, trusted by every container here."""
        assert self.trust is not None, "node not started"
        import datetime as dt

        pair = self.trust.issue_serving(names, validity=dt.timedelta(days=1))
        return pair.cert_pem, pair.key_pem

    # --- life cycle --------------------------------------------------------------------
    def __enter__(self) -> RealNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, progress: Progress | None = None) -> None:
        """Build (once) and start the node; see the module's guarantees."""
        steps: list[tuple[str, float]] = []

        def step(name: str, began: float) -> float:
            now = time.monotonic()
            steps.append((name, now - began))
            return now

        began = time.monotonic()
        try:
            self.assets = install(progress=progress)
        except AssetsError as exc:
            raise NodeError(str(exc)) from exc
        began = step("build (cached)", began)
        missing = [t for t in TOOLS if shutil.which(t, path=os.environ.get("PATH", "") +
                                                    ":/usr/sbin:/sbin") is None]
        if missing or not Path("/usr/lib/cni/bridge").exists():
            raise NodeError(f"missing {', '.join(missing) or 'the CNI plugins'}: run "
                            "`make node-tools` (apt-get install containerd runc "
                            "containernetworking-plugins iptables socat)")
        if self.plane.server == "":
            raise NodeError("the control plane is not started")
        if not set(APISERVER_FLAGS) <= set(self.plane.settings.apiserver_flags):
            raise NodeError("start the control plane with realnode.plane_settings() (the API "
                            "server must reach the kubelet by its address)")
        sweep_stale_nodes(self.settings)
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX, dir=self.settings.root_dir))
        (self.root / OWNER_FILE).write_text(f"{os.getpid()}\n")
        try:
            self._host_network()
            began = step("bridge", began)
            self._start_containerd()
            began = step("containerd", began)
            self._import_images()
            began = step("import images", began)
            self._start_relay()
            self._start_kubelet()
            self._wait_node_ready()
            began = step("kubelet (node Ready)", began)
            self._start_kube_proxy()
            began = step("kube-proxy", began)
            self._start_coredns()
            step("CoreDNS ready", began)
        except BaseException:
            self.stop()
            raise
        self.times = StartTimes(tuple(steps))

    # --- host network ------------------------------------------------------------------
    def _host_network(self) -> None:
        """The bridge, its address and Service route, the firewall rules, ip_forward."""
        s = self.settings
        prefix = ipaddress.ip_network(s.pod_cidr).prefixlen
        if Path(f"/sys/class/net/{s.bridge}").exists():
            raise NodeError(f"network interface {s.bridge} already exists: another real node "
                            "is running on this machine")
        _run(["ip", "link", "add", s.bridge, "type", "bridge"], what="creating the bridge")
        self._host.append(["ip", "link", "delete", s.bridge])
        _run(["ip", "addr", "add", f"{self.gateway}/{prefix}", "dev", s.bridge],
             what="addressing the bridge")
        _run(["ip", "link", "set", s.bridge, "up"], what="bringing the bridge up")
        # Service addresses go to the bridge: with no endpoint (nothing DNATed) they go nowhere
        _run(["ip", "route", "add", SERVICE_CIDR, "dev", s.bridge, "src", self.gateway],
             what="routing the Service range to the bridge")
        for chain, rule in host_rules(s.bridge):
            _run(["iptables", "-w", "-I", chain, "1", *rule], what=f"adding an {chain} rule")
            self._host.append(["iptables", "-w", "-D", chain, *rule])
        forward = Path("/proc/sys/net/ipv4/ip_forward")
        self._ip_forward = forward.read_text().strip()
        if self._ip_forward != "1":
            forward.write_text("1\n")

    # --- containerd --------------------------------------------------------------------
    def _start_containerd(self) -> None:
        assert self.root is not None
        self.trust = CertificateAuthority.create("kuar-real-node-trust")
        bundle = self._dir("trust") / "ca-certificates.crt"
        host_store = Path(TRUST_BUNDLE)
        bundle.write_bytes((host_store.read_bytes() if host_store.exists() else b"")
                           + self.trust.cert_pem)
        bundle.chmod(0o644)
        default = json.loads(_run(["ctr", "oci", "spec"], what="ctr oci spec").stdout)
        spec = config.base_spec(default, config.Limits.within_hard_limits(), [
            {"destination": TRUST_BUNDLE, "type": "bind", "source": str(bundle),
             "options": ["rbind", "ro"]}])
        base = self._dir("containerd") / "base-spec.json"
        base.write_text(json.dumps(spec, indent=1))
        cni_conf = self._dir("cni") / "net.d"
        cni_conf.mkdir(exist_ok=True)
        (cni_conf / "10-kuar.conflist").write_text(json.dumps(config.cni_conflist(
            bridge=self.settings.bridge, subnet=self.settings.pod_cidr, gateway=self.gateway,
            ipam_dir=self._dir("cni") / "ipam"), indent=1))
        runc = shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin") or "runc"
        toml = self._dir("containerd") / "config.toml"
        toml.write_text(config.containerd_toml(
            root=self._dir("containerd") / "root", state=self._dir("containerd") / "state",
            socket=self.socket, cni_conf_dir=cni_conf, cni_bin_dir=Path("/usr/lib/cni"),
            base_spec=base, runc=runc, sandbox_image=PAUSE_IMAGE))
        proc = self._spawn("containerd", ["containerd", "--config", str(toml)])
        self._wait("containerd", proc, lambda: _run(
            ["ctr", f"--address={self.socket}", "version"], what="ctr version", timeout=5,
            check=False).returncode == 0)

    def import_images(self, archives: Iterable[tuple[Path, str]]) -> None:
        """Import OCI archives into containerd as ``<repository>:<tag>`` and by digest.

        The second name, ``<repository>@<manifest digest>``, is what the CRI reports as the
        image's repo digest, so a pod naming ``name:tag@sha256:...`` (the install tree with
        the digests of images.json) finds it without a registry.
        """
        for path, repository in archives:
            _run(self.ctr("images", "import", "--base-name", repository, str(path)),
                 what=f"importing {path.name}", timeout=300)
            with tarfile.open(path) as tar:
                member = tar.extractfile("index.json")
                assert member is not None
                index = json.loads(member.read())
            for manifest in index["manifests"]:
                tag = manifest.get("annotations", {}).get(
                    "org.opencontainers.image.ref.name", "").rsplit(":", 1)[-1]
                _run(self.ctr("images", "tag", "--force", f"{repository}:{tag}",
                              f"{repository}@{manifest['digest']}"),
                     what=f"naming {repository} by its digest")

    def _import_images(self) -> None:
        assert self.assets is not None
        self.import_images([
            (self.assets.path("pause.oci.tar"), PAUSE_IMAGE.rsplit(":", 1)[0]),
            (self.assets.path("coredns.oci.tar"), COREDNS_IMAGE.rsplit(":", 1)[0]),
            *self.settings.images])

    # --- the API-server relay and kube-proxy --------------------------------------------
    def _start_relay(self) -> None:
        port = self.plane.server.rsplit(":", 1)[1]
        self._spawn("apiserver-relay", [
            "socat", f"TCP-LISTEN:6443,bind={self.gateway},reuseaddr,fork",
            f"TCP:127.0.0.1:{port}"])
        self._kubectl_apply([addons.kubernetes_endpoints(self.gateway, 6443),
                             *addons.node_rbac(f"system:node:{self.settings.name}",
                                               "system:kube-proxy")])

    def _start_kube_proxy(self) -> None:
        assert self.assets is not None
        kubeconfig = self.plane.add_user("system:kube-proxy")
        conf = self._dir("kube-proxy") / "config.yaml"
        health = free_port()
        conf.write_text(config.to_yaml(config.kube_proxy_config(
            kubeconfig=kubeconfig, hostname=self.settings.name,
            cluster_cidr=self.settings.pod_cidr, node_ip=self.gateway, healthz_port=health,
            metrics_port=free_port())))
        for tool in ("iptables", "ip6tables"):
            if _run([tool, "-w", "-n", "-L", "KUBE-FIREWALL"], what=f"{tool} -L",
                    check=False).returncode == 0:
                continue
            # kube-proxy (iptables mode, both families) makes the kubelet's KUBE-FIREWALL chain
            # when missing, and --cleanup leaves it (the kubelet's to keep): made here, removed
            # here, after --cleanup
            for argv in (["-D", "INPUT", "-j", "KUBE-FIREWALL"],
                         ["-D", "OUTPUT", "-j", "KUBE-FIREWALL"],
                         ["-F", "KUBE-FIREWALL"], ["-X", "KUBE-FIREWALL"]):
                self._host.insert(0, [tool, "-w", *argv])
        self._host.append([str(self.assets.path("kube-proxy")), "--cleanup"])
        proc = self._spawn("kube-proxy", [str(self.assets.path("kube-proxy")),
                                          f"--config={conf}", "--v=1"])
        self._wait("kube-proxy", proc, lambda: self._http_ok(health, "/healthz"))

    # --- kubelet -----------------------------------------------------------------------
    def _start_kubelet(self) -> None:
        assert self.assets is not None and self.root is not None
        self._cgroups_before = set(Path("/sys/fs/cgroup").glob("*/kubepods"))
        kubeconfig = self.plane.add_user(f"system:node:{self.settings.name}",
                                         ["system:nodes"])
        resolv = self._dir("kubelet") / "resolv.conf"
        resolv.write_text("")  # pods get the cluster DNS only, never the host's resolvers
        client_ca = self._dir("kubelet") / "ca.crt"
        client_ca.write_bytes(self.plane.ca_pem)
        self._kubelet_health = free_port()
        conf = self._dir("kubelet") / "config.yaml"
        conf.write_text(config.to_yaml(config.kubelet_config(
            socket=self.socket, address=self.gateway, port=free_port(),
            healthz_port=self._kubelet_health,
            cluster_dns=self.settings.cluster_dns, resolv_conf=resolv, client_ca=client_ca,
            pod_cidr=self.settings.pod_cidr)))
        self._kubelet_argv = [
            str(self.assets.path("kubelet")), f"--config={conf}", f"--kubeconfig={kubeconfig}",
            f"--root-dir={self._dir('kubelet') / 'root'}",
            f"--cert-dir={self._dir('kubelet') / 'pki'}",
            f"--hostname-override={self.settings.name}", f"--node-ip={self.gateway}",
            "--v=1"]
        self.start_kubelet()

    def start_kubelet(self) -> None:
        """Start the kubelet (again, after :meth:`kill_kubelet`) and wait for its /healthz."""
        proc = self._spawn("kubelet", self._kubelet_argv)
        self._wait("kubelet", proc, lambda: self._http_ok(self._kubelet_health, "/healthz"))

    def kill_kubelet(self) -> None:
        """SIGKILL the kubelet (a fault); its containers keep running under containerd."""
        self._procs["kubelet"].kill()

    def _wait_node_ready(self) -> None:
        deadline = time.monotonic() + self.settings.start_timeout
        last = ""
        while time.monotonic() < deadline:
            proc = _run([*self.plane.kubectl(), "get", "node", self.settings.name, "-o",
                         "jsonpath={.status.conditions[?(@.type=='Ready')].status}"],
                        what="kubectl get node", check=False)
            last = (proc.stdout + proc.stderr).strip()
            if last == "True":
                return
            self._check_alive()
            time.sleep(0.5)
        raise NodeError(f"node {self.settings.name} not Ready in "
                        f"{self.settings.start_timeout:.0f} s ({last}); kubelet log:\n"
                        f"{self._procs['kubelet'].log_tail()}")

    def _start_coredns(self) -> None:
        self._kubectl_apply(addons.coredns(COREDNS_IMAGE, self.settings.cluster_dns))
        proc = _run([*self.plane.kubectl(), "-n", "kube-system", "rollout", "status",
                     "deployment/coredns", f"--timeout={int(self.settings.start_timeout)}s"],
                    what="waiting for CoreDNS", check=False,
                    timeout=self.settings.start_timeout + 10)
        if proc.returncode != 0:
            pods = _run([*self.plane.kubectl(), "-n", "kube-system", "describe", "pods"],
                        what="describe", check=False).stdout[-2000:]
            raise NodeError(f"CoreDNS did not become ready: {proc.stderr.strip()}\n{pods}")

    # --- helpers -----------------------------------------------------------------------
    def _kubectl_apply(self, objects: list[dict[str, Any]]) -> None:
        text = yaml.safe_dump_all(objects, sort_keys=False)
        _run([*self.plane.kubectl(), "apply", "--server-side", "--field-manager=kuar-realnode",
              "--force-conflicts", "-f", "-"], what="kubectl apply (node add-ons)",
             input_text=text)

    def _spawn(self, name: str, argv: list[str]) -> Process:
        assert self.root is not None
        env = dict(os.environ)
        env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/sbin"
        proc = Process(name, argv, self._dir("logs"), env=env)
        self._procs[name] = proc
        proc.start()
        return proc

    def _wait(self, name: str, proc: Process, ready: Any) -> None:
        deadline = time.monotonic() + min(60.0, self.settings.start_timeout)
        while time.monotonic() < deadline:
            if proc.exit_code() is not None:
                raise NodeError(f"{name} exited with code {proc.exit_code()}; last log lines:\n"
                                f"{proc.log_tail()}")
            if ready():
                return
            time.sleep(0.1)
        raise NodeError(f"{name} not ready in time; last log lines:\n{proc.log_tail()}")

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            code = proc.exit_code()
            if code is not None:
                raise NodeError(f"{name} exited with code {code}; last log lines:\n"
                                f"{proc.log_tail()}")

    @staticmethod
    def _http_ok(port: int, path: str) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    # --- teardown ----------------------------------------------------------------------
    def containers(self) -> list[dict[str, Any]]:
        """The CRI's containers (``crictl ps -a``) as dicts: id, name, pod, state."""
        proc = _run(self.crictl("ps", "-a", "-o", "json"), what="crictl ps", check=False)
        if proc.returncode != 0:
            return []
        listed: list[dict[str, Any]] = json.loads(proc.stdout or "{}").get("containers", [])
        return listed

    def stop(self) -> None:
        """Remove every pod and container, stop every process, undo host changes; see above."""
        kubelet = self._procs.pop("kubelet", None)
        if kubelet is not None:
            kubelet.stop(15)
        containerd = self._procs.get("containerd")
        if self.assets is not None and containerd is not None and containerd.running:
            # stop and remove every sandbox through the CRI: CNI DEL, netns removed
            _run(self.crictl("rmp", "--force", "--all"), what="crictl rmp", check=False,
                 timeout=120)
            _run(self.crictl("rm", "--force", "--all"), what="crictl rm", check=False,
                 timeout=60)
        for name in ("kube-proxy", "apiserver-relay", "containerd"):
            proc = self._procs.pop(name, None)
            if proc is not None:
                proc.stop(15)
        self._procs.clear()
        for argv in reversed(self._host):
            subprocess.run(argv, capture_output=True, check=False, timeout=60)
        self._host.clear()
        if self._ip_forward is not None and self._ip_forward != "1":
            with contextlib.suppress(OSError):
                Path("/proc/sys/net/ipv4/ip_forward").write_text(self._ip_forward + "\n")
            self._ip_forward = None
        _remove_cgroups(set(Path("/sys/fs/cgroup").glob("*/kubepods")) - self._cgroups_before)
        if self.root is not None:
            _unmount_all(self.root)
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def host_rules(bridge: str) -> list[tuple[str, list[str]]]:
    """The node's iptables rules, each inserted at the top of its chain in this order.

    FORWARD: nothing passes between the bridge and any other interface (pods reach pods and
    Services, never the machine's networks). INPUT: from the bridge, the node itself accepts
    only the API-server relay (6443) and replies to what it opened (probes, webhook calls);
    the kubelet's port and anything else listening on the node stay out of the pods' reach.
    """
    tag = ["-m", "comment", "--comment", RULE_COMMENT]
    return [
        ("FORWARD", ["-i", bridge, "!", "-o", bridge, *tag, "-j", "DROP"]),
        ("FORWARD", ["-o", bridge, "!", "-i", bridge, *tag, "-j", "DROP"]),
        ("INPUT", ["-i", bridge, *tag, "-j", "DROP"]),
        ("INPUT", ["-i", bridge, "-p", "tcp", "--dport", "6443", *tag, "-j", "ACCEPT"]),
        ("INPUT", ["-i", bridge, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", *tag,
                   "-j", "ACCEPT"]),
    ]


def _remove_cgroups(tops: set[Path]) -> None:
    """Remove the kubelet's cgroup trees (deepest first); a cgroup with a process stays."""
    for top in tops:
        folders = sorted((p for p in top.rglob("*") if p.is_dir()),
                         key=lambda p: len(p.parts), reverse=True)
        for folder in [*folders, top]:
            with contextlib.suppress(OSError):
                folder.rmdir()


def sweep_stale_nodes(settings: RealNodeSettings) -> None:
    """Undo what a real node whose owner died left: mounts, rules, bridge, folder.

    Only roots named ``kuar-rnode-*`` whose ``owner.pid`` names no live process are touched;
    their mounts are unmounted before the folder is removed. When such a root exists, the
    bridge and the FORWARD rules it would have made go too (one real node per machine), and
    ``kube-proxy --cleanup`` runs if the kube-proxy it used is still in the cache.
    """
    parent = settings.root_dir or Path(tempfile.gettempdir())
    stale = []
    for folder in parent.glob(f"{PREFIX}*"):
        try:
            pid = int((folder / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stale.append(folder)
        except PermissionError:
            continue
    if not stale:
        return
    for folder in stale:
        _unmount_all(folder)
    subprocess.run(["ip", "link", "delete", settings.bridge], capture_output=True, check=False)
    for chain, rule in host_rules(settings.bridge):
        subprocess.run(["iptables", "-w", "-D", chain, *rule], capture_output=True, check=False)
    from kuar.testing.realnode.assets import find_node_assets

    found = find_node_assets()
    if found is not None:
        subprocess.run([str(found.path("kube-proxy")), "--cleanup"], capture_output=True,
                       check=False, timeout=60)
    sweep_stale(PREFIX, parent)
