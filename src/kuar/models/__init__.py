"""Typed models of every built-in Kubernetes kind, generated from the API server's OpenAPI v3.

Place in the pipeline: beside :mod:`kuar.resources` (whose base classes they use), below
:mod:`kuar.client`: ``Api(client, Deployment)``, ``controller_for(...).owns(Deployment)`` and
server-side apply take them as they take custom resources. Known as ``k8s-openapi`` in kube-rs
and ``k8s.io/api`` in client-go.

One module per API group and version, imported on its own (this package imports none)::

    from kuar.models.core.v1 import Pod, Container
    from kuar.models.apps.v1 import Deployment

``kuar.models.meta.v1`` holds the shared meta types; ``ObjectMeta``, ``OwnerReference``,
``ListMeta`` and ``Condition`` are the ones of :mod:`kuar.resources`. The modules are written by
``kuar generate models`` from the kube-apiserver that kuar builds (see
``kuar.testing.assets``) and checked in CI with ``--check``; do not edit them by hand.
"""

from __future__ import annotations

import importlib

from kuar.models._kinds import KINDS
from kuar.resources.model import Resource

__all__ = ["KINDS", "model_for"]


def model_for(api_version: str, kind: str) -> type[Resource] | None:
    """The generated class of a built-in kind (``model_for("apps/v1", "Deployment")``).

    Imports only that kind's module. ``None`` when the kind is not a built-in one.
    """
    group, _, version = api_version.rpartition("/")
    path = KINDS.get((group, version, kind))
    if path is None:
        return None
    cls: type[Resource] = getattr(importlib.import_module(f"kuar.models.{path}"), kind)
    return cls
