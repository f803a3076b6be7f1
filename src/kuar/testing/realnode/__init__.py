"""The real node: kubelet, containerd + runc, a CNI bridge, kube-proxy and CoreDNS on this machine.

Place in the pipeline: beside the process node (:mod:`kuar.testing.localnode`); used by
``kuar up --node real``, ``kuar demo --node real``, tests/e2e/realnode and bench/controlplane.
The process node runs pods as host processes and starts in a second; this node runs the
project's images as containers with pod IPs, Services and cluster DNS, as a user's cluster does,
and needs root and Debian's container packages (``make node-tools``).
"""

from kuar.testing.realnode.assets import NodeAssets, find_node_assets, install
from kuar.testing.realnode.node import (
    APISERVER_FLAGS,
    NodeError,
    RealNode,
    RealNodeSettings,
    StartTimes,
    image_archives,
    plane_settings,
)

__all__ = [
    "APISERVER_FLAGS",
    "NodeAssets",
    "NodeError",
    "RealNode",
    "RealNodeSettings",
    "StartTimes",
    "find_node_assets",
    "image_archives",
    "install",
    "plane_settings",
]
