"""Installing generated CRDs on the shared control plane (used by several test modules)."""

from __future__ import annotations

import sys
from typing import Any

from kuar.client import Client, apply_manifests
from kuar.resources import CustomResource, crd_for, find_resources


def _alone(cls: type[CustomResource]) -> dict[str, Any]:
    """The CRD of a served-only version (LoadTest v1) as the only served and stored one.

    The generic tests use LoadTest v1 (the seed's shape) as a one-version example; its schema
    is taken from the CRD of all its versions, so it is exactly what is deployed. The other
    versions stay in the CRD, unserved (the API server refuses to drop a version that was
    ever stored, e.g. by the test that installs deploy/crds), and no conversion is needed.
    """
    opts = cls.__kuar_crd__
    assert opts is not None
    package = sys.modules[cls.__module__].__name__.rpartition(".")[0]
    siblings = [c for c in find_resources(package)
                if c.__kuar_crd__ is not None and c.__kuar_crd__.kind == opts.kind
                and c.__kuar_crd__.group == opts.group]
    crd = crd_for(*siblings)
    crd["spec"]["versions"] = [{**v, "storage": v["name"] == opts.version,
                                "served": v["name"] == opts.version}
                               for v in crd["spec"]["versions"]]
    crd["spec"].pop("conversion", None)
    return crd


async def install(client: Client, *classes: type[CustomResource]) -> dict[str, Any]:
    """Server-side apply the CRD of ``classes`` and wait until it is Established.

    One class of a served-only version is installed alone as its own storage version.
    """
    opts = classes[0].__kuar_crd__ if len(classes) == 1 else None
    crd = _alone(classes[0]) if opts is not None and not opts.storage else crd_for(*classes)
    await apply_manifests(client, [crd], field_manager="kuar-tests")
    return crd
