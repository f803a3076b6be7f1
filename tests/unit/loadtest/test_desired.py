"""Compiling a LoadTest into a target URL and an Indexed Job (pure rules)."""

from __future__ import annotations

from typing import Any

import pytest

from kuar.models.core.v1 import Service
from kuar.models.discovery.v1 import EndpointSlice
from kuar_loadtest.api.conversion import v1_to_v2
from kuar_loadtest.api.v2 import LoadTest
from kuar_loadtest.desired import (
    PlanError,
    budget_problem,
    cap_problem,
    desired_job,
    endpoint_problem,
    job_name,
    parse_duration,
    resolve_target,
    run_spec,
    worker_count,
)
from kuar_loadtest.settings import OperatorSettings


def _lt(**spec: Any) -> LoadTest:
    """A LoadTest written in the seed's v1 shape, read as v2 (as the API server converts)."""
    body = {"service": "web", "requestsPerSecond": 1000, **spec}
    return LoadTest.decode(v1_to_v2({
        "apiVersion": "beta.kuar.com/v1", "kind": "LoadTest",
        "metadata": {"name": "my-loadtest", "namespace": "team-a", "uid": "u-1",
                     "generation": 3},
        "spec": body,
    }))


def _svc(*ports: dict[str, Any]) -> Service:
    return Service.decode(
        {"metadata": {"name": "web", "namespace": "team-a"}, "spec": {"ports": list(ports)}})


def test_target_is_the_service_in_the_loadtests_own_namespace() -> None:
    target = resolve_target(_lt(), _svc({"port": 8080}))
    assert target.url == "http://web.team-a.svc:8080" and target.port == 8080


def test_port_rules() -> None:
    two = _svc({"name": "metrics", "port": 9090}, {"name": "https", "port": 8443})
    assert resolve_target(_lt(scheme="https"), two).port == 8443
    assert resolve_target(_lt(), two).port == 9090  # no port named http: the first
    assert resolve_target(_lt(port=9090), two).port == 9090
    with pytest.raises(PlanError) as err:
        resolve_target(_lt(port=1234), two)
    assert err.value.reason == "PortNotFound" and "9090, 8443" in str(err.value)


def test_missing_service_and_portless_service_are_plan_errors() -> None:
    with pytest.raises(PlanError) as err:
        resolve_target(_lt(), None)
    assert err.value.reason == "ServiceNotFound" and "team-a" in str(err.value)
    with pytest.raises(PlanError) as err:
        resolve_target(_lt(), _svc())
    assert err.value.reason == "ServiceHasNoPorts"


@pytest.mark.parametrize(
    ("rps", "workers", "expected"),
    [(1000, None, 1), (5000, None, 1), (5001, None, 2), (12_000, None, 3), (10, 4, 4),
     (3, 8, 3), (10_000_000, None, 100)],
)
def test_worker_count(rps: int, workers: int | None, expected: int) -> None:
    base = _lt()
    load = base.spec.load.model_copy(update={"requests_per_second": rps, "workers": workers})
    lt = LoadTest.model_construct(spec=base.spec.model_copy(update={"load": load}),
                                  metadata=base.metadata)
    assert worker_count(lt, OperatorSettings()) == expected


def test_durations() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("1m30s") == 90
    assert parse_duration("250ms") == 0.25
    assert parse_duration("1h") == 3600
    with pytest.raises(PlanError):
        parse_duration("soon")


def test_job_name_tracks_generation_and_fits_label_limits() -> None:
    assert job_name(_lt()) == "my-loadtest-run-3"
    long = _lt()
    long.metadata.name = "x" * 60
    name = job_name(long)
    assert len(name) <= 52 and name.endswith("-run-3")


def test_job_is_indexed_owned_and_carries_the_worker_contract() -> None:
    lt = _lt(workers=2, paths=["/a", "/b"], duration="30s")
    target = resolve_target(lt, _svc({"port": 80}))
    settings = OperatorSettings(coordinated_start=False)
    job = desired_job(lt, target, settings, start_at=1000.0).encode()
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 2 and spec["backoffLimit"] == 0
    owner = job["metadata"]["ownerReferences"][0]
    assert owner == {"apiVersion": "beta.kuar.com/v2", "kind": "LoadTest", "name": "my-loadtest",
                     "uid": "u-1", "controller": True, "blockOwnerDeletion": True}
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == OperatorSettings().image
    assert "--result-file" in container["args"]
    args = container["args"]
    assert args[args.index("--spec-file") + 1] == "/var/run/kuar.dev/run/spec.json"
    load = run_spec(lt, target, settings, start_at=1000.0)
    assert load.urls == ("http://web.team-a.svc:80",)
    assert load.rps == 1000 and load.shard_count == 2 and load.duration == 30
    assert load.paths == ("/a", "/b") and load.start_at == 1000.0
    assert spec["activeDeadlineSeconds"] >= 30


# --- issue 14, finding 2: where load may go, and how much of it -----------------------------

def test_an_externalname_service_is_never_a_target() -> None:
    svc = Service.decode({"metadata": {"name": "web", "namespace": "team-a"}, "spec": {
        "type": "ExternalName", "externalName": "example.com", "ports": [{"port": 80}]}})
    with pytest.raises(PlanError, match="ExternalName") as exc:
        resolve_target(_lt(), svc)
    assert exc.value.reason == "ExternalNameNotAllowed"


def test_rate_and_duration_caps() -> None:
    settings = OperatorSettings(max_requests_per_second=100, max_duration=60)
    assert cap_problem(_lt(requestsPerSecond=100, duration="60s"), settings) is None
    too_fast = cap_problem(_lt(requestsPerSecond=101), settings)
    assert too_fast is not None and too_fast.reason == "RateAboveCap"
    too_long = cap_problem(_lt(requestsPerSecond=10, duration="61s"), settings)
    assert too_long is not None and too_long.reason == "DurationAboveCap"


def _named(name: str, namespace: str, rps: int) -> LoadTest:
    return LoadTest.decode({
        "apiVersion": "beta.kuar.com/v2", "kind": "LoadTest",
        "metadata": {"name": name, "namespace": namespace, "uid": f"u-{name}"},
        "spec": {"target": {"service": "web"}, "load": {"requestsPerSecond": rps}}})


def test_total_and_per_namespace_rate_budgets() -> None:
    settings = OperatorSettings(max_total_requests_per_second=1000,
                                max_namespace_requests_per_second=600)
    running = [_named("a", "team-a", 400), _named("b", "team-b", 400)]
    assert budget_problem(_named("c", "team-c", 200), running, settings) is None
    over_total = budget_problem(_named("c", "team-c", 201), running, settings)
    assert over_total is not None and over_total.reason == "RateBudgetExceeded"
    assert "operator already runs 800" in str(over_total)
    over_ns = budget_problem(_named("d", "team-a", 201), running, settings)
    assert over_ns is not None and "namespace team-a already runs 400" in str(over_ns)
    # a LoadTest already counted as running is not counted twice
    assert budget_problem(running[0], running, settings) is None


def test_worker_pods_have_cpu_and_memory_limits() -> None:
    lt = _lt()
    job = desired_job(lt, resolve_target(lt, _svc({"port": 80})), OperatorSettings(),
                      start_at=0.0).encode()
    limits = job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "1", "memory": "256Mi"}


def _slice(*addresses: str) -> EndpointSlice:
    return EndpointSlice.decode({"metadata": {"name": "web-x"}, "addressType": "IPv4",
                                 "endpoints": [{"addresses": list(addresses)}]})


def test_a_selectorless_service_must_point_inside_the_allowed_addresses() -> None:
    # issue 14, finding 2: hand-written endpoints of a selector-less Service name any host
    bare = _svc({"port": 80})
    with_selector = Service.decode({"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"port": 80}]}})
    trusting = OperatorSettings(allowed_endpoint_cidrs=("10.244.0.0/24",))
    assert endpoint_problem(_lt(), with_selector, [_slice("8.8.8.8")], OperatorSettings()) is None
    assert endpoint_problem(_lt(), bare, [_slice("10.244.0.7")], trusting) is None
    outside = endpoint_problem(_lt(), bare, [_slice("10.244.0.7", "93.184.216.34")], trusting)
    assert outside is not None and outside.reason == "EndpointsNotAllowed"
    assert "93.184.216.34" in str(outside)
    default = endpoint_problem(_lt(), bare, [_slice("10.244.0.7")], OperatorSettings())
    assert default is not None and "allows no addresses" in str(default)
    named = endpoint_problem(_lt(), bare, [_slice("example.com")], trusting)
    assert named is not None  # a hostname is never vouched for
