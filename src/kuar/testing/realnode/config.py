"""The real node's configuration files: containerd, the OCI base spec, CNI, kubelet, kube-proxy.

Place in the pipeline: pure functions that :class:`~kuar.testing.realnode.RealNode` writes
into its temporary root before starting each process; unit-tested on their own.

What the machine needs (../shared/design/containers.md, measured):
- hybrid cgroups (v1 controllers): the kubelet needs ``failCgroupV1: false`` and the
  ``cgroupfs`` driver; containerd's runc runs with ``SystemdCgroup = false``.
- no CAP_SYS_RESOURCE: no rlimit may be raised above the hard limit, so the base spec names
  every container's rlimits explicitly, within this machine's hard limits
  (:func:`base_spec`), and containerd keeps oom_score_adj within its own
  (``restrict_oom_score_adj``).
- no registry: the sandbox image is the locally built ``kuar.dev/pause`` and images are never
  pulled (they are imported into containerd).
Every address and folder is the node's own: containerd and the kubelet listen on sockets and
127.0.0.1 ports, CNI state and network namespaces live under the node's root.
"""

from __future__ import annotations

import json
import resource
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class Limits:
    """Rlimits every container gets (soft = hard), kept within this process's hard limits."""

    nofile: int
    nproc: int

    @classmethod
    def within_hard_limits(cls, nofile: int = 16384, nproc: int = 8192) -> Limits:
        """``nofile``/``nproc``, lowered to the hard limits where those are smaller."""
        def cap(which: int, wanted: int) -> int:
            hard = resource.getrlimit(which)[1]
            return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)

        return cls(nofile=cap(resource.RLIMIT_NOFILE, nofile),
                   nproc=cap(resource.RLIMIT_NPROC, nproc))


def containerd_toml(*, root: Path, state: Path, socket: Path, cni_conf_dir: Path,
                    cni_bin_dir: Path, base_spec: Path, runc: str, sandbox_image: str) -> str:
    """Containerd 1.6's config (version 2): its own folders and socket, runc, cgroupfs."""
    runtime = "plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc"
    return f"""version = 2
root = "{root}"
state = "{state}"
oom_score = 0

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false
  max_concurrent_downloads = 1

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{cni_bin_dir}"
  conf_dir = "{cni_conf_dir}"
  max_conf_num = 1

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{runtime}]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "{base_spec}"

[{runtime}.options]
  BinaryName = "{runc}"
  SystemdCgroup = false
"""


def base_spec(default: dict[str, Any], limits: Limits,
              extra_mounts: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Containerd's default OCI spec with explicit rlimits and the node's extra mounts.

    ``default`` is what ``ctr oci spec`` prints. The rlimits replace its list (only
    RLIMIT_NOFILE there); each extra mount is added to every container of the node.
    """
    spec: dict[str, Any] = json.loads(json.dumps(default))
    process = spec.setdefault("process", {})
    process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "hard": limits.nofile, "soft": limits.nofile},
        {"type": "RLIMIT_NPROC", "hard": limits.nproc, "soft": limits.nproc},
    ]
    spec.setdefault("mounts", []).extend(extra_mounts)
    return spec


def cni_conflist(*, bridge: str, subnet: str, gateway: str, ipam_dir: Path) -> dict[str, Any]:
    """One bridge network: pods get addresses from ``subnet``; nothing is masqueraded."""
    return {
        "cniVersion": "1.0.0",
        "name": "kuar-node",
        "plugins": [{
            "type": "bridge",
            "bridge": bridge,
            "isGateway": True,
            "ipMasq": False,  # pods only talk to pods, Services and the node itself
            "hairpinMode": True,  # a pod reaches itself through its Service
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet, "gateway": gateway}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": str(ipam_dir),
            },
        }],
    }


def kubelet_config(*, socket: Path, address: str, port: int, healthz_port: int, cluster_dns: str,
                   resolv_conf: Path, client_ca: Path, pod_cidr: str) -> dict[str, Any]:
    """KubeletConfiguration for a cgroup v1 (hybrid) machine without a registry.

    ``failCgroupV1: false``: Kubernetes 1.35+ refuses cgroup v1 otherwise (KEP-5573). The
    kubelet's API answers on ``address``, the node's bridge address, which the node's INPUT
    rules close to pods; it allows anonymous requests (the API server calls it without a
    client certificate), so any process of this machine could use it: a test node, not a
    production one. Image garbage collection is off, because imported images cannot be
    pulled again; eviction thresholds are low so a busy shared disk does not taint the node.
    """
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": f"unix://{socket}",
        "failSwapOn": False,
        "address": address,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False},
                           "x509": {"clientCAFile": str(client_ca)}},
        "authorization": {"mode": "AlwaysAllow"},
        "clusterDNS": [cluster_dns],
        "clusterDomain": "cluster.local",
        "resolvConf": str(resolv_conf),
        "podCIDR": pod_cidr,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "serializeImagePulls": False,
        "registerNode": True,
        "syncFrequency": "10s",
        "nodeStatusUpdateFrequency": "5s",
        "shutdownGracePeriod": "0s",
        "containerLogMaxSize": "5Mi",
        "maxPods": 60,
        # the hint/canary/firewall chains are for other components; leave the host's rules
        # alone (kube-proxy makes what it needs and removes it with --cleanup)
        "makeIPTablesUtilChains": False,
    }


def kube_proxy_config(*, kubeconfig: Path, hostname: str, cluster_cidr: str, node_ip: str,
                      healthz_port: int, metrics_port: int) -> dict[str, Any]:
    """KubeProxyConfiguration: iptables mode, node ports only on the node's bridge address.

    Conntrack sysctls are left as they are (``maxPerCore: 0``); ``localhostNodePorts`` is off,
    so kube-proxy does not turn on route_localnet.
    """
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": hostname,
        "clusterCIDR": cluster_cidr,
        "bindAddress": node_ip,  # the node's address (no lookup of the Node object)
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "nodePortAddresses": [f"{node_ip}/32"],
        "iptables": {"localhostNodePorts": False, "syncPeriod": "10s",
                     "minSyncPeriod": "0s"},
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
    }


def to_yaml(obj: dict[str, Any]) -> str:
    """YAML text of a config object."""
    return yaml.safe_dump(obj, sort_keys=False)
