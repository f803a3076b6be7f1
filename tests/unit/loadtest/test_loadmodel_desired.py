"""The v2 load model compiled into a Job: stages, mix, template, queue (pure rules)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from kuar_loadgen.spec import LoadSpec
from kuar_loadtest.api.v2 import LoadTest
from kuar_loadtest.desired import (
    PlanError,
    ResolvedTarget,
    body_refs,
    desired_job,
    peak_rate,
    queue_problem,
    run_configmap,
    run_seconds,
    run_spec,
)
from kuar_loadtest.settings import OperatorSettings

TARGET = ResolvedTarget("http://web.n.svc:80", 80)


def _lt(name: str = "t", ns: str = "n", created: int = 0, **spec: Any) -> LoadTest:
    body = {"target": {"service": "web"}, "load": {"requestsPerSecond": 10}, **spec}
    return LoadTest.decode({
        "apiVersion": "beta.kuar.com/v2", "kind": "LoadTest",
        "metadata": {"name": name, "namespace": ns, "uid": f"u-{ns}-{name}", "generation": 1,
                     "creationTimestamp": (dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
                                           + dt.timedelta(seconds=created)).isoformat()},
        "spec": body})


def _job(lt: LoadTest) -> dict[str, Any]:
    return desired_job(lt, TARGET, OperatorSettings(), start_at=0.0).encode()


def _spec(lt: LoadTest) -> LoadSpec:
    """The worker spec as the run's ConfigMap holds it (every pod's is the same)."""
    job = desired_job(lt, TARGET, OperatorSettings(), name="t-run-1")
    configmap = run_configmap(lt, run_spec(lt, TARGET, OperatorSettings()), job)
    return LoadSpec.from_dict(json.loads((configmap.data or {})["spec.json"]))


def test_stages_set_the_peak_the_duration_and_the_worker_profile() -> None:
    lt = _lt(load={"startRate": 5, "workers": 2, "stages": [
        {"duration": "2s", "target": 40}, {"duration": "1m", "target": 0}]})
    assert peak_rate(lt) == 40 and run_seconds(lt) == 62
    spec = _spec(lt)
    assert spec.stages == ((2.0, 40.0), (60.0, 0.0)) and spec.start_rate == 5
    assert spec.profile().total == round(45 / 2 * 2 + 40 / 2 * 60)


def test_secret_bodies_reach_the_pod_by_reference_only() -> None:
    lt = _lt(target={"service": "web", "requests": [
        {"method": "POST", "body": "inline", "weight": 2},
        {"method": "PUT", "bodyFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]})
    [ref] = body_refs(lt)
    assert (ref.kind, ref.name, ref.key, ref.file) == ("Secret", "s", "k", "body-1")
    job = _job(lt)
    [volume] = job["spec"]["template"]["spec"]["volumes"]
    assert {"secret": {"name": "s", "items": [{"key": "k", "path": "body-1"}]}} in \
        volume["projected"]["sources"]
    assert "env" not in job["spec"]["template"]["spec"]["containers"][0]
    kinds = _spec(lt).requests
    assert [(k.method, k.body, k.body_file, k.weight) for k in kinds] == [
        ("POST", "inline", "", 2), ("PUT", "", "body-1", 1)]


def test_a_spec_the_worker_refuses_is_a_plan_error() -> None:
    lt = _lt(target={"service": "web", "headers": {"Bad Name": "x"}})
    with pytest.raises(PlanError) as err:
        _job(lt)
    assert err.value.reason == "InvalidSpec" and "header" in str(err.value)
    # one ConfigMap holds the spec with its inline bodies: 1 MiB in all
    fits = _lt(target={"service": "web", "requests": [{"method": "POST",
                                                       "body": "x" * 1_000_000}]})
    assert len(_spec(fits).requests[0].body) == 1_000_000
    big = _lt(target={"service": "web", "requests": [
        {"method": "POST", "body": "x" * 600_000}, {"method": "PUT", "body": "y" * 600_000}]})
    with pytest.raises(PlanError) as err:
        _job(big)
    assert err.value.reason == "SpecTooLarge" and "bodyFrom" in str(err.value)


def test_the_runner_template_places_and_labels_the_pods() -> None:
    lt = _lt(runner={
        "resources": {"requests": {"cpu": "250m"}}, "nodeSelector": {"pool": "load"},
        "tolerations": [{"key": "load", "operator": "Exists", "effect": "NoSchedule"}],
        "separate": True, "serviceAccountName": "runner", "priorityClassName": "low",
        "labels": {"team": "a", "kuar.dev/loadtest": "spoofed"}, "annotations": {"a": "b"}})
    pod = _job(lt)["spec"]["template"]
    assert pod["metadata"]["labels"]["team"] == "a"
    assert pod["metadata"]["labels"]["kuar.dev/loadtest"] == "t"  # the operator's label wins
    assert pod["metadata"]["annotations"] == {"a": "b"}
    spec = pod["spec"]
    assert spec["nodeSelector"] == {"pool": "load"} and spec["serviceAccountName"] == "runner"
    assert spec["priorityClassName"] == "low" and spec["tolerations"][0]["key"] == "load"
    assert spec["automountServiceAccountToken"] is False
    [term] = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == {"kuar.dev/loadtest": "t", "kuar.dev/run": "1"}
    resources = spec["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "250m"}
    assert resources["limits"] == {"cpu": "1", "memory": "256Mi"}  # the operator's caps


def test_the_queue_is_first_come_first_served_per_cap() -> None:
    settings = OperatorSettings(max_concurrent_runs=2, max_namespace_concurrent_runs=1)
    running = [_lt("r", "a")]
    early, late = _lt("early", "b", created=1), _lt("late", "b", created=2)
    assert queue_problem(early, running, [early, late], settings) is None
    waiting = queue_problem(late, running, [early, late], settings)
    assert waiting is not None and waiting[1] == 2 and waiting[0].reason == "ConcurrencyLimit"
    # namespace a is full, but c's LoadTest may run beside it
    assert queue_problem(_lt("c", "c"), running, [], settings) is None
    assert queue_problem(_lt("a2", "a"), running, [], settings) is not None
    assert queue_problem(late, running, [], OperatorSettings()) is None  # no caps
