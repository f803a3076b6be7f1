"""kuar: a Python toolkit for extending Kubernetes.

Subpackages, named after the architecture (see docs/architecture.md):
``kuar.resources`` (typed resources, CRD generation), ``kuar.client`` (API access),
``kuar.runtime`` (informers, workqueue, reconcile), ``kuar.webhook`` (admission and conversion),
``kuar.manager`` (running it all), ``kuar.testing`` (a real local control plane), ``kuar.cli``.
"""

__version__ = "0.1.0"
