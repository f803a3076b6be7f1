"""Where a kind lives on the API server: group, version, plural name and scope.

Place in the pipeline: declared by every typed resource (``LoadTest.resource_info()``), found by
:class:`kuar.client.Discovery` for untyped kinds, and used by ``kuar.client.Api`` and the
runtime to build URLs. Pure: no I/O. Known as ``ApiResource`` in kube-rs and the
``RESTMapping`` in client-go.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """Where a kind lives: ``group``/``version``, ``plural`` name and scope."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        """``group/version``, or just ``version`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The collection URL, or an object's URL when ``name`` is given."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base
