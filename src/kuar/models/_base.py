"""Base classes of the generated models: lazy validators, JSON names from the OpenAPI.

Place in the pipeline: every class of :mod:`kuar.models` derives from :class:`Model` (a
sub-object) or :class:`Kind` (a top-level kind, a :class:`~kuar.resources.Resource`).

Both build their pydantic validators on first use (``defer_build``): core/v1 alone has
hundreds of classes, and a program that decodes Pods should not pay for building
PersistentVolume's validator at import. Descriptions come from ``Field(description=...)``,
so pydantic need not read the source for attribute docstrings.
"""

from __future__ import annotations

from pydantic import ConfigDict

from kuar.resources.model import KubeModel, Resource

_CONFIG = ConfigDict(defer_build=True, use_attribute_docstrings=False, protected_namespaces=())


class Model(KubeModel):
    """A generated sub-object (``PodSpec``, ``Container``...)."""

    model_config = _CONFIG


class Kind(Resource):
    """A generated top-level kind (``Pod``, ``Deployment``...)."""

    model_config = _CONFIG
