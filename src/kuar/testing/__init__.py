"""A real Kubernetes control plane for tests, benchmarks and demos (known as envtest).

Public: :class:`ControlPlane` and its settings, :func:`eventually`, and the pytest plugin
(:mod:`kuar.testing.pytest_plugin`, loaded automatically when kuar is installed). Only tests,
benchmarks, examples and the CLI's ``up``/``demo`` import this package.
"""

from kuar.testing.assets import Assets, AssetsError, find_assets, install
from kuar.testing.controlplane import ControlPlane, ControlPlaneSettings, StartError, free_port
from kuar.testing.eventually import eventually, eventually_async

__all__ = [
    "Assets",
    "AssetsError",
    "ControlPlane",
    "ControlPlaneSettings",
    "StartError",
    "eventually",
    "eventually_async",
    "find_assets",
    "free_port",
    "install",
]
