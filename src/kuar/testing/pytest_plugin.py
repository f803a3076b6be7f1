"""pytest fixtures on the real local control plane (loaded automatically with kuar).

Fixtures:
- ``control_plane`` (session): etcd, kube-apiserver, kube-controller-manager and
  kube-scheduler, started once per test session and stopped at its end.
- ``kubeconfig`` (session): path of the admin kubeconfig.
- ``kube_client`` (function, async): a :class:`kuar.client.Client` for the admin.
- ``namespace`` (function): a fresh namespace, deleted after the test.
- ``kubectl`` (session): runs the real kubectl against the control plane.

Tests that must break the control plane (kill the API server, compact etcd) start their own
:class:`~kuar.testing.ControlPlane` instead of using the shared one.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from kuar.client import Api, Client, NotFound, load_config
from kuar.resources import ObjectMeta
from kuar.testing.controlplane import ControlPlane, ControlPlaneSettings
from kuar.testing.eventually import eventually_async

Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """The session's control plane (with controller-manager and scheduler)."""
    plane = ControlPlane(
        ControlPlaneSettings(with_controller_manager=True, with_scheduler=True)
    )
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Path:
    """The admin kubeconfig of the session's control plane."""
    return control_plane.kubeconfig


@pytest.fixture
async def kube_client(kubeconfig: Path) -> AsyncIterator[Client]:
    """An admin client, closed after the test."""
    client = Client(await load_config(kubeconfig))
    try:
        yield client
    finally:
        await client.close()


def make_kubectl(plane: ControlPlane, kubeconfig: Path | None = None) -> Kubectl:
    """A function running the real kubectl against ``plane`` (admin unless ``kubeconfig``)."""
    command = plane.kubectl(kubeconfig)

    def kubectl(
        *args: str, check: bool = True, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*command, *args], capture_output=True, text=True,
            input=input, timeout=timeout, check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
            )
        return proc

    return kubectl


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Kubectl:
    """Run the real kubectl as admin: ``kubectl("get", "pods", "-n", ns)``."""
    return make_kubectl(control_plane)


@pytest.fixture
async def namespace(kube_client: Client, control_plane: ControlPlane) -> AsyncIterator[str]:
    """A fresh namespace ``t-<random>``; deleted (in the background) after the test.

    With the controller-manager running, it is handed over once its ``default``
    ServiceAccount exists, since Pods cannot be created before that.
    """
    # imported here, not at plugin load: pytest loads this plugin in every session, and
    # core/v1 is the largest models module
    from kuar.models.core.v1 import Namespace, ServiceAccount

    name = f"t-{uuid.uuid4().hex[:10]}"
    namespaces = Api(kube_client, Namespace)
    await namespaces.create(Namespace(metadata=ObjectMeta(name=name)))
    if control_plane.settings.with_controller_manager:
        accounts = Api(kube_client, ServiceAccount, namespace=name)
        await eventually_async(lambda: accounts.get("default"), timeout=30)
    try:
        yield name
    finally:
        with contextlib.suppress(NotFound):
            await namespaces.delete(name)
