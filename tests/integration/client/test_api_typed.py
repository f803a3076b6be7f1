"""Api[T] on the real API server: typed round trips, apply, patches, subresources, errors."""

from __future__ import annotations

import asyncio
import base64
import uuid
from pathlib import Path
from typing import Any

import pytest

from kuar.client import (
    AlreadyExists,
    Api,
    Client,
    ClientConfig,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Unauthorized,
    load_config,
)
from kuar.models.batch.v1 import Job, JobSpec
from kuar.models.coordination.v1 import Lease, LeaseSpec
from kuar.models.core.v1 import (
    ConfigMap,
    Container,
    Namespace,
    ObjectReference,
    Pod,
    PodSpec,
    PodTemplateSpec,
    Secret,
    Service,
    ServicePort,
    ServiceSpec,
)
from kuar.models.events.v1 import Event
from kuar.resources import DynamicObject, ObjectMeta, ResourceInfo, Status
from kuar_loadtest.api import LoadTest, LoadTestSpec, LoadTestStatus
from tests.integration.resources.helpers import install
from tests.unit.resources.widgets import Widget, WidgetSpec

pytestmark = pytest.mark.controlplane


def _lt(name: str, rps: int = 100, **spec: Any) -> LoadTest:
    return LoadTest(metadata=ObjectMeta(name=name, labels={"app": "t"}),
                    spec=LoadTestSpec(service="svc", requests_per_second=rps, **spec))


@pytest.fixture
async def loadtests(kube_client: Client, namespace: str) -> Api[LoadTest]:
    await install(kube_client, LoadTest)
    return Api(kube_client, LoadTest, namespace=namespace, field_manager="kuar-tests")


async def test_typed_object_create_get_round_trip_is_equal(loadtests: Api[LoadTest]) -> None:
    obj = _lt("rt", paths=["/a", "/b"], port=8443, duration="5m", workers=2, scheme="https")
    created = await loadtests.create(obj)
    got = await loadtests.get("rt")
    assert got == created
    assert got.spec == obj.spec
    assert got.metadata.labels == {"app": "t"}
    assert got.api_version == "beta.kuar.com/v1" and got.kind == "LoadTest"
    assert got.metadata.uid and got.metadata.resource_version and got.metadata.creation_timestamp


async def test_create_of_an_existing_name_raises_already_exists(
    loadtests: Api[LoadTest],
) -> None:
    await loadtests.create(_lt("dup"))
    with pytest.raises(AlreadyExists):
        await loadtests.create(_lt("dup"))


async def test_get_of_a_missing_object_raises_not_found(loadtests: Api[LoadTest]) -> None:
    with pytest.raises(NotFound):
        await loadtests.get("nope")


async def test_replace_with_a_stale_resource_version_raises_conflict(
    loadtests: Api[LoadTest],
) -> None:
    first = await loadtests.create(_lt("stale"))
    fresh = first.model_copy(deep=True)
    fresh.spec.requests_per_second = 200
    await loadtests.replace(fresh)
    first.spec.requests_per_second = 300
    with pytest.raises(Conflict) as err:
        await loadtests.replace(first)
    assert not isinstance(err.value, AlreadyExists)
    assert (await loadtests.get("stale")).spec.requests_per_second == 200


async def test_server_side_apply_twice_is_idempotent(loadtests: Api[LoadTest]) -> None:
    desired = _lt("applied", rps=50)
    first = await loadtests.apply(desired)
    second = await loadtests.apply(desired)
    assert second.metadata.resource_version == first.metadata.resource_version
    assert second == first
    managers = {m["manager"] for m in second.metadata.managed_fields or []}
    assert managers == {"kuar-tests"}


async def test_apply_by_two_managers_conflicts_unless_forced(loadtests: Api[LoadTest]) -> None:
    await loadtests.apply(_lt("shared", rps=50))
    with pytest.raises(Conflict):
        await loadtests.apply(_lt("shared", rps=70), field_manager="other")
    forced = await loadtests.apply(_lt("shared", rps=70), field_manager="other", force=True)
    assert forced.spec.requests_per_second == 70


async def test_merge_and_json_patches_change_only_what_they_name(
    loadtests: Api[LoadTest],
) -> None:
    await loadtests.create(_lt("patched", paths=["/x"]))
    merged = await loadtests.patch("patched", {"spec": {"requestsPerSecond": 7}})
    assert merged.spec.requests_per_second == 7 and merged.spec.paths == ["/x"]
    patched = await loadtests.patch(
        "patched",
        [{"op": "test", "path": "/spec/requestsPerSecond", "value": 7},
         {"op": "add", "path": "/spec/paths/-", "value": "/y"}],
        type="json",
    )
    assert patched.spec.paths == ["/x", "/y"]
    with pytest.raises(Invalid):
        await loadtests.patch(
            "patched", [{"op": "test", "path": "/spec/requestsPerSecond", "value": 8}],
            type="json",
        )


async def test_list_pages_through_every_object(loadtests: Api[LoadTest]) -> None:
    await asyncio.gather(*(loadtests.create(_lt(f"p{i}")) for i in range(7)))
    page = await loadtests.list(limit=3)
    assert len(page.items) == 3 and page.continue_token
    assert page.metadata.remaining_item_count == 4
    names = [o.name async for o in loadtests.list_all(page_size=3)]
    assert sorted(names) == sorted(f"p{i}" for i in range(7))
    assert all(isinstance(o, LoadTest) for o in page.items)
    selected = await loadtests.list(label_selector="app=t")
    assert len(selected.items) == 7 and selected.resource_version


async def test_status_verbs_write_only_status(loadtests: Api[LoadTest]) -> None:
    await loadtests.create(_lt("st"))
    patched = await loadtests.patch_status("st", {"status": {"phase": "Pending"}})
    assert patched.status is not None and patched.status.phase == "Pending"
    applied = await loadtests.apply_status(
        LoadTest(metadata=ObjectMeta(name="st"),
                 spec=LoadTestSpec(service="ignored", requests_per_second=1),
                 status=LoadTestStatus(phase="Running", job_name="job-1")),
        field_manager="status-writer", force=True,  # phase was set by the patch above
    )
    assert applied.status is not None and applied.status.phase == "Running"
    assert applied.spec.service == "svc"  # spec is not written through /status
    got = await loadtests.get_status("st")
    assert got.status == applied.status


async def test_delete_returns_the_object_while_a_finalizer_holds_it(
    loadtests: Api[LoadTest],
) -> None:
    obj = _lt("fin")
    obj.metadata.finalizers = ["kuar.test/hold"]
    await loadtests.create(obj)
    held = await loadtests.delete("fin", propagation_policy="Foreground")
    assert isinstance(held, LoadTest) and held.metadata.deletion_timestamp is not None
    await loadtests.patch("fin", {"metadata": {"finalizers": None}})
    with pytest.raises(NotFound):
        await loadtests.get("fin")


async def test_delete_with_a_wrong_precondition_raises_conflict(
    loadtests: Api[LoadTest],
) -> None:
    await loadtests.create(_lt("pre"))
    with pytest.raises(Conflict):
        await loadtests.delete("pre", uid=str(uuid.uuid4()))
    gone = await loadtests.delete("pre", propagation_policy="Background")
    assert isinstance(gone, (LoadTest, Status))
    with pytest.raises(NotFound):
        await loadtests.get("pre")


async def test_scale_subresource_reads_and_sets_replicas(
    kube_client: Client, namespace: str
) -> None:
    await install(kube_client, Widget)
    api = Api(kube_client, Widget, namespace=namespace)
    await api.create(Widget(metadata=ObjectMeta(name="sc"), spec=WidgetSpec(size=1, replicas=2)))
    scale = await api.get_scale("sc")
    assert scale.spec.replicas == 2
    scale.spec.replicas = 4
    assert (await api.replace_scale("sc", scale)).spec.replicas == 4
    assert (await api.patch_scale("sc", {"spec": {"replicas": 5}})).spec.replicas == 5
    assert (await api.get("sc")).spec.replicas == 5


async def test_built_in_kinds_round_trip_without_losing_unmodelled_fields(
    kube_client: Client, namespace: str
) -> None:
    cms = Api(kube_client, ConfigMap, namespace=namespace)
    cm = await cms.create(ConfigMap(metadata=ObjectMeta(name="cm"), data={"k": "v"}))
    assert (await cms.get("cm")).data == {"k": "v"}
    secret = await Api(kube_client, Secret, namespace=namespace).create(
        Secret(metadata=ObjectMeta(name="s"), string_data={"password": "pw"})
    )
    assert secret.data == {"password": base64.b64encode(b"pw").decode()}
    services = Api(kube_client, Service, namespace=namespace)
    svc = await services.create(Service(
        metadata=ObjectMeta(name="web"),
        spec=ServiceSpec(selector={"app": "web"},
                         ports=[ServicePort(port=80, target_port="http")]),
    ))
    assert svc.spec is not None and svc.spec.cluster_ip
    assert svc.spec.session_affinity == "None"  # defaulted by the server, decoded, kept
    svc.metadata.labels = {"tier": "front"}
    replaced = await services.replace(svc)
    assert replaced.spec is not None and replaced.spec.cluster_ip == svc.spec.cluster_ip
    jobs = Api(kube_client, Job, namespace=namespace)
    job = await jobs.create(Job(
        metadata=ObjectMeta(name="j"),
        spec=JobSpec(template=PodTemplateSpec(spec=PodSpec(
            containers=[Container(name="c", image="busybox", args=["true"])],
            restart_policy="Never")), backoff_limit=0),
    ))
    assert job.spec is not None and job.spec.template.spec is not None
    assert job.spec.template.spec.containers[0].args == ["true"]
    pods = Api(kube_client, Pod, namespace=namespace)
    pod = await pods.create(Pod(metadata=ObjectMeta(name="p"), spec=PodSpec(
        containers=[Container(name="c", image="busybox")])))
    assert pod.spec is not None and pod.spec.containers[0].image == "busybox"
    lease = await Api(kube_client, Lease, namespace=namespace).create(Lease(
        metadata=ObjectMeta(name="l"),
        spec=LeaseSpec(holder_identity="me", lease_duration_seconds=15,
                       renew_time="2024-01-01T00:00:00.123456Z"),
    ))
    assert lease.spec is not None and lease.spec.renew_time is not None
    assert lease.encode()["spec"]["renewTime"] == "2024-01-01T00:00:00.123456Z"  # MicroTime
    event = await Api(kube_client, Event, namespace=namespace).create(Event(
        metadata=ObjectMeta(name="e1"), event_time="2024-01-01T00:00:00.000001Z",
        reporting_controller="kuar.test/c", reporting_instance="i", action="Testing",
        reason="Tested", type="Normal", note="hello",
        regarding=ObjectReference(api_version="v1", kind="ConfigMap", name="cm",
                                  namespace=namespace, uid=cm.metadata.uid),
    ))
    assert event.regarding is not None and event.regarding.uid == cm.metadata.uid
    ns = await Api(kube_client, Namespace).get(namespace)
    assert ns.status is not None and ns.status.phase == "Active"


async def test_dynamic_object_works_for_any_kind(kube_client: Client, namespace: str) -> None:
    info = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)
    api = Api(kube_client, DynamicObject, namespace=namespace, resource=info)
    created = await api.create(DynamicObject.model_validate({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn"},
        "data": {"x": "1"},
    }))
    assert created["data"] == {"x": "1"}
    assert (await api.get("dyn")).encode()["data"] == {"x": "1"}


async def test_cluster_scoped_kinds_ignore_the_namespace(kube_client: Client) -> None:
    api = Api(kube_client, Namespace, namespace="ignored")
    name = f"t-{uuid.uuid4().hex[:8]}"
    created = await api.create(Namespace(metadata=ObjectMeta(name=name)))
    assert created.metadata.namespace is None
    listed = [n.name async for n in api.list_all()]
    assert name in listed
    await api.delete(name)


async def test_a_user_without_rights_gets_forbidden(
    control_plane: Any, namespace: str
) -> None:
    path: Path = control_plane.add_user("nobody-typed")
    async with Client(await load_config(path)) as client:
        with pytest.raises(Forbidden):
            await Api(client, ConfigMap, namespace=namespace).list()


async def test_a_bad_token_gets_unauthorized(kube_client: Client) -> None:
    cfg = kube_client.config

    async def bogus() -> str:
        return "not-a-token"

    bad = ClientConfig(server=cfg.server, ssl_context=_ca_only(cfg), token=bogus)
    async with Client(bad) as client:
        with pytest.raises(Unauthorized):
            await Api(client, ConfigMap, namespace="default").get("x")


def _ca_only(cfg: ClientConfig) -> Any:
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # only this test: a client without its certificate
    return ctx
