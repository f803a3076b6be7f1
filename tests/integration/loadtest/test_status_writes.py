"""Issue 14, finding 9: LoadTest status writes use optimistic concurrency.

A status written from a stale copy (another writer changed the status since the cache saw
it) must be refused with a Conflict and retried from fresh data, never silently drop the
other writer's change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from kuar.client import Api, Client, Conflict, load_config
from kuar.resources import ObjectMeta, crd_for
from kuar.runtime import EventRecorder, InformerCache, RecorderSettings
from kuar.testing import ControlPlane, ControlPlaneSettings
from kuar_loadtest.api.v2 import Load, LoadTest, LoadTestSpec, Target
from kuar_loadtest.controller import LoadTestReconciler
from kuar_loadtest.local import install_crd, loadtestrun_crd
from kuar_loadtest.settings import OperatorSettings

pytestmark = pytest.mark.controlplane


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with ControlPlane(ControlPlaneSettings()) as plane:
        yield plane


@pytest.fixture(scope="module")
async def client(plane: ControlPlane) -> AsyncIterator[Client]:
    client = Client(await load_config(plane.kubeconfig))
    await install_crd(client, crd_for(LoadTest))
    await install_crd(client, loadtestrun_crd())
    yield client
    await client.close()


async def test_a_status_write_from_a_stale_copy_conflicts_and_loses_nothing(
    client: Client,
) -> None:
    api = Api(client, LoadTest, namespace="default")
    stale = await api.create(LoadTest(metadata=ObjectMeta(name="contended"),
                                      spec=LoadTestSpec(target=Target(service="web"),
                                                        load=Load(requests_per_second=10))))
    # another writer (a person, another controller) adds a condition after our read
    await api.patch_status("contended", {"status": {"conditions": [{
        "type": "External", "status": "True", "reason": "SetByOther", "message": "keep me",
        "lastTransitionTime": "2030-01-01T00:00:00Z"}]}})
    recorder = EventRecorder(client, RecorderSettings(controller="test"))
    reconciler = LoadTestReconciler(client, InformerCache(client), OperatorSettings(), recorder,
                                    namespace="default")
    with pytest.raises(Conflict):
        await reconciler._set_status(stale, phase="Pending", message="from a stale copy",
                                     conditions=[("ServiceResolved", "False", "X", "y")])
    now = await api.get("contended")
    assert now.status is not None and now.status.conditions is not None
    assert [c.type for c in now.status.conditions] == ["External"]  # nothing dropped
    # from fresh data the same write goes through and keeps the other writer's condition
    await reconciler._set_status(now, phase="Pending", message="from fresh data",
                                 conditions=[("ServiceResolved", "False", "X", "y")])
    after = await api.get("contended")
    assert after.status is not None and after.status.conditions is not None
    assert {c.type for c in after.status.conditions} == {"External", "ServiceResolved"}
    assert after.status.message == "from fresh data"
