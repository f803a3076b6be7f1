"""The metrics registry every part of kuar records into, and the manager serves.

Place in the pipeline: the base layer. The runtime (:mod:`kuar.runtime.metrics`) and the webhook
server (:mod:`kuar.webhook.server`) register their metric families here unless given another
registry; the manager's ``/metrics`` serves it. Known as ``metrics.Registry`` in
controller-runtime (``sigs.k8s.io/controller-runtime/pkg/metrics``).

Guarantees: one registry per process, separate from ``prometheus_client``'s global one, so an
application's own metrics in the global registry do not collide with kuar's names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

REGISTRY = CollectorRegistry(auto_describe=True)
"""kuar's default registry (separate from prometheus_client's global one)."""
