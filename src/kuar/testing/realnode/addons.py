"""The real node's cluster add-ons as manifests: CoreDNS and the RBAC of the node's processes.

Place in the pipeline: :class:`~kuar.testing.realnode.RealNode` applies these with kubectl
once the control plane answers and before (RBAC) or after (CoreDNS) the kubelet registers.

Guarantees: CoreDNS answers only for ``cluster.local`` (and reverse lookups of the node's
ranges) from the API server; it forwards nothing, so no pod's DNS query leaves the machine. It
runs as a Deployment of the locally built ``kuar.dev/coredns`` image behind Service
``kube-system/kube-dns`` at the kubelet's ``clusterDNS`` address.
"""

from __future__ import annotations

from typing import Any

COREFILE = """.:53 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
}
"""

_LABELS = {"k8s-app": "kube-dns"}


def node_rbac(kubelet_user: str, proxy_user: str) -> list[dict[str, Any]]:
    """Bind the built-in node and node-proxier roles to the kubelet's and kube-proxy's users.

    The control plane authorizes with RBAC only (no Node authorizer), so the kubelet gets the
    ``system:node`` ClusterRole by name, as kubeadm did before the Node authorizer.
    """
    def binding(name: str, role: str, user: str) -> dict[str, Any]:
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                              "name": user}]}

    return [binding("kuar-node:kubelet", "system:node", kubelet_user),
            binding("kuar-node:kube-proxy", "system:node-proxier", proxy_user)]


def coredns(image: str, cluster_ip: str) -> list[dict[str, Any]]:
    """ServiceAccount, read-only RBAC, ConfigMap, Deployment and Service of CoreDNS."""
    meta = {"name": "coredns", "namespace": "kube-system", "labels": _LABELS}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "kuar-node:coredns"},
         "rules": [{"apiGroups": [""], "resources": ["services", "pods", "namespaces"],
                    "verbs": ["list", "watch"]},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                    "verbs": ["list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "kuar-node:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "kuar-node:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": "coredns",
                       "namespace": "kube-system"}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
         "data": {"Corefile": COREFILE}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
            "replicas": 1,
            "selector": {"matchLabels": _LABELS},
            "template": {"metadata": {"labels": _LABELS}, "spec": {
                "serviceAccountName": "coredns",
                "dnsPolicy": "Default",
                "priorityClassName": "system-cluster-critical",
                "containers": [{
                    "name": "coredns", "image": image, "imagePullPolicy": "Never",
                    "args": ["-conf", "/etc/coredns/Corefile"],
                    "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                              {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}],
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181},
                                       "periodSeconds": 2},
                    "livenessProbe": {"httpGet": {"path": "/health", "port": 8080},
                                      "periodSeconds": 10, "failureThreshold": 5},
                    "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                                  "limits": {"memory": "128Mi"}},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
                }],
                "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
            }},
        }},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": _LABELS},
         "spec": {"selector": _LABELS, "clusterIP": cluster_ip, "ports": [
             {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
             {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}},
    ]


def kubernetes_endpoints(address: str, port: int) -> dict[str, Any]:
    """The EndpointSlice of Service ``default/kubernetes``: the node's API-server relay.

    The control plane runs without an endpoint reconciler (its API server binds 127.0.0.1,
    which no pod can reach), so the node publishes its relay on the bridge address.
    """
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes",
                                "endpointslice.kubernetes.io/managed-by": "realnode.kuar.dev"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }
