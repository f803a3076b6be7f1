"""Issue 15 acceptance on the local cluster: the v2 load model end to end.

Stages (a ramp, open loop, sharded exactly), thresholds, the seed's v1 object unchanged. The
LoadTests here are written in v2 (the storage version) unless the test is about v1.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kuar.client import Invalid
from kuar.testing import eventually_async
from tests.e2e.conftest import Cluster, operator, published_process, target_service

REPO = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

V2 = "/apis/beta.kuar.com/v2/namespaces/{ns}/loadtests"


def v2(name: str, load: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A v2 LoadTest against Service ``web``."""
    return {"apiVersion": "beta.kuar.com/v2", "kind": "LoadTest", "metadata": {"name": name},
            "spec": {"target": {"service": "web", "paths": ["/a"]}, "load": load, **spec}}


async def create_v2(cluster: Cluster, ns: str, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = await cluster.client.request(
        "POST", V2.format(ns=ns), body=body)
    return created


async def wait_v2(cluster: Cluster, ns: str, name: str, *phases: str,
                  timeout: float = 90) -> dict[str, Any]:
    async def check() -> dict[str, Any]:
        lt: dict[str, Any] = await cluster.client.request(
            "GET", V2.format(ns=ns) + f"/{name}")
        phase = (lt.get("status") or {}).get("phase")
        assert phase in phases, (phase, lt.get("status"))
        return lt

    return await eventually_async(check, timeout=timeout, interval=0.25)


async def full_result(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    cm = await cluster.client.request("GET", f"/api/v1/namespaces/{ns}/configmaps/"
                                              f"{name}-results")
    result: dict[str, Any] = json.loads(cm["data"]["result.json"])
    return result


async def test_a_ramp_holds_the_profile_within_2_percent_in_its_steady_parts(
    cluster: Cluster, ns: str
) -> None:
    stages = [{"duration": "3s", "target": 100}, {"duration": "2s", "target": 1000},
              {"duration": "3s", "target": 1000}, {"duration": "2s", "target": 0}]
    async with target_service(cluster, ns, latency_ms=1), operator(cluster, ns):
        await create_v2(cluster, ns, v2("ramp", {"startRate": 100, "stages": stages,
                                                 "workers": 3}))
        lt = await wait_v2(cluster, ns, "ramp", "Succeeded")
    results = lt["status"]["results"]
    # 3*100 + (100+1000)/2*2 + 3*1000 + 1000/2*2
    assert results["requests"] == 5400 and results["errors"] == 0, results
    result = await full_result(cluster, ns, "ramp")
    achieved = result["timeline"]["sent"]  # requests written per second
    assert result["timeline"]["interval_s"] == 1
    requested = [100, 100, 100, 325, 775, 1000, 1000, 1000, 750, 250]
    for second in (0, 1, 2, 5, 6, 7):  # the steady parts
        assert abs(achieved[second] - requested[second]) <= 0.02 * requested[second], \
            (second, achieved[:11], requested)
    assert sum(achieved) == 5400


async def test_bad_stages_are_denied_naming_the_field(cluster: Cluster, ns: str) -> None:
    cases = {
        "spec.load.stages[1].duration": [{"duration": "1s", "target": 5},
                                         {"duration": "0s", "target": 5}],
        "spec.load.stages[0].target": [{"duration": "1s", "target": -5}],
        "spec.load.stages": [{"duration": "1s", "target": 0}],
    }
    for i, (field, stages) in enumerate(cases.items()):
        with pytest.raises(Invalid) as info:
            await create_v2(cluster, ns, v2(f"bad-{i}", {"stages": stages}))
        assert field in [c.field for c in info.value.causes], info.value.message


async def test_a_slow_target_crosses_a_threshold_and_abort_on_fail_stops_early(
    cluster: Cluster, ns: str
) -> None:
    load = {"requestsPerSecond": 100, "duration": "4s", "workers": 2}
    async with target_service(cluster, ns, latency_ms=80), operator(cluster, ns):
        await create_v2(cluster, ns, v2("slow", load, thresholds=["p99 < 50ms",
                                                                  "errorRate < 1%"]))
        await create_v2(cluster, ns, v2("abort", {**load, "duration": "60s"},
                                        thresholds=["p95 < 50ms"], abortOnFail=True))
        slow = await wait_v2(cluster, ns, "slow", "Succeeded", "Failed")
        aborted = await wait_v2(cluster, ns, "abort", "Succeeded", "Failed", timeout=50)
    status = slow["status"]
    assert status["phase"] == "Failed", status
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Failed"]["reason"] == "ThresholdsCrossed"
    met = conditions["ThresholdsMet"]
    assert met["status"] == "False" and met["reason"] == "ThresholdsCrossed"
    assert "p99 < 50ms crossed" in met["message"] and "errorRate" not in met["message"]
    assert status["results"]["requests"] == 400  # ran to its end
    # abortOnFail: the 60 s run ended within the 50 s wait, having sent far fewer requests
    status = aborted["status"]
    assert status["phase"] == "Failed" and "stopped early" in status["message"], status
    assert status["results"]["requests"] < 6000 / 4, status["results"]


async def test_an_unparsable_threshold_is_denied_naming_the_field(
    cluster: Cluster, ns: str
) -> None:
    with pytest.raises(Invalid) as info:
        await create_v2(cluster, ns, v2("bad-threshold", {"requestsPerSecond": 10},
                                        thresholds=["p99 < 50ms", "p99 << fast"]))
    assert [c.field for c in info.value.causes] == ["spec.thresholds[1]"]


@contextlib.asynccontextmanager
async def counting_service(cluster: Cluster, ns: str) -> AsyncIterator[int]:
    """tests/e2e/counting_server.py published as Service ``web``; yields its local port."""
    port = free_port()
    argv = [sys.executable, "-m", "tests.e2e.counting_server", str(port)]
    async with published_process(cluster, ns, "web", argv, port,
                                 env={**os.environ, "PYTHONPATH": str(REPO)}):
        yield port


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


async def test_a_post_mix_with_headers_and_bodies_reaches_the_server_in_exact_counts(
    cluster: Cluster, ns: str
) -> None:
    secret_body, cm_body = '{"token":"s3cr3t-v4lue"}', '{"from":"configmap"}'
    await cluster.client.request("POST", f"/api/v1/namespaces/{ns}/secrets", body={
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bodies"},
        "data": {"order": base64.b64encode(secret_body.encode()).decode()}})
    await cluster.client.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "payloads"},
        "data": {"p": cm_body}})
    requests = [
        {"method": "POST", "path": "/orders", "headers": {"X-Kind": "inline",
                                                         "Content-Type": "application/json"},
         "body": '{"n":1}', "weight": 3},
        {"method": "PUT", "path": "/secret", "headers": {"X-Kind": "secret"},
         "bodyFrom": {"secretKeyRef": {"name": "bodies", "key": "order"}}, "weight": 1},
        {"method": "POST", "path": "/cm", "bodyFrom": {"configMapKeyRef": {
            "name": "payloads", "key": "p"}}, "weight": 1},
        {"method": "DELETE", "path": "/never", "weight": 0},
    ]
    async with counting_service(cluster, ns) as port, operator(cluster, ns):
        body = v2("mix", {"requestsPerSecond": 100, "duration": "2s", "workers": 2})
        body["spec"]["target"]["requests"] = requests
        await create_v2(cluster, ns, body)
        lt = await wait_v2(cluster, ns, "mix", "Succeeded")
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/_counts") as response:
            counts = await response.json()
    inline = _sha('{"n":1}')
    assert counts == {f"POST /orders inline {inline}": 120,
                      f"PUT /secret secret {_sha(secret_body)}": 40,
                      f"POST /cm - {_sha(cm_body)}": 40}, counts
    assert lt["status"]["results"]["requests"] == 200
    # the Secret's value is nowhere: status, Events, results, the Job
    events = await cluster.client.request(
        "GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events")
    results = await cluster.client.request("GET", f"/api/v1/namespaces/{ns}/configmaps/"
                                                  "mix-results")
    jobs = await cluster.client.request("GET", f"/apis/batch/v1/namespaces/{ns}/jobs")
    for where in (lt, events, results, jobs):
        assert "s3cr3t" not in json.dumps(where)


async def test_a_512_kib_body_reaches_the_server_through_the_run_volume(
    cluster: Cluster, ns: str
) -> None:
    # over Linux's 128 KiB per environment string: the worker reads it from its run volume
    inline, keyed = "i" * (512 * 1024), "k" * (900 * 1024)
    await cluster.client.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "large"},
        "data": {"body": keyed}})
    async with counting_service(cluster, ns) as port, operator(cluster, ns):
        body = v2("large", {"requestsPerSecond": 10, "duration": "1s", "workers": 2})
        body["spec"]["target"]["requests"] = [
            {"method": "POST", "path": "/inline", "body": inline},
            {"method": "PUT", "path": "/keyed", "bodyFrom": {"configMapKeyRef": {
                "name": "large", "key": "body"}}}]
        await create_v2(cluster, ns, body)
        lt = await wait_v2(cluster, ns, "large", "Succeeded")
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/_counts") as response:
            counts = await response.json()
        spec = await cluster.client.request(
            "GET", f"/api/v1/namespaces/{ns}/configmaps/large-run-1-spec")
    assert counts == {f"POST /inline - {_sha(inline)}": 5,
                      f"PUT /keyed - {_sha(keyed)}": 5}, counts
    assert lt["status"]["results"]["requests"] == 10
    # the run's ConfigMap holds the spec (inline body included), owned by the run's Job
    assert spec["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert len(spec["data"]["spec.json"]) > 512 * 1024 and keyed not in spec["data"]["spec.json"]


async def test_a_missing_secret_keeps_the_run_pending_with_a_warning(
    cluster: Cluster, ns: str
) -> None:
    body = v2("nosecret", {"requestsPerSecond": 10, "duration": "1s"})
    body["spec"]["target"]["requests"] = [{"method": "POST", "path": "/x", "bodyFrom": {
        "secretKeyRef": {"name": "absent", "key": "k"}}}]
    async with target_service(cluster, ns), operator(cluster, ns):
        await create_v2(cluster, ns, body)
        lt = await wait_v2(cluster, ns, "nosecret", "Pending", timeout=30)

        async def warned() -> None:
            events = await cluster.client.request(
                "GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events")
            assert any(e.get("reason") == "BodySourceNotFound" and e.get("type") == "Warning"
                       for e in events["items"]), events["items"]

        await eventually_async(warned, timeout=20)
    conditions = {c["type"]: c for c in lt["status"]["conditions"]}
    found = conditions["RequestBodiesFound"]
    assert found["status"] == "False" and found["reason"] == "BodySourceNotFound"
    assert "spec.target.requests[0].bodyFrom.secretKeyRef" in found["message"]


async def test_bad_request_mixes_are_denied_naming_the_field(cluster: Cluster, ns: str) -> None:
    cases = {
        "spec.target.requests": [{"method": "POST", "weight": 0}, {"weight": 0}],
        "spec.target.requests[0].body": [{"method": "POST", "body": "x" * (1024 * 1024 + 1)}],
        "spec.target.requests[1].headers": [{"path": "/a"}, {"headers": {"Bad Name": "v"}}],
    }
    for i, (field, requests) in enumerate(cases.items()):
        body = v2(f"badmix-{i}", {"requestsPerSecond": 10})
        body["spec"]["target"]["requests"] = requests
        with pytest.raises(Invalid) as info:
            await create_v2(cluster, ns, body)
        assert field in [c.field for c in info.value.causes], info.value.message


async def test_with_one_concurrent_run_a_second_loadtest_waits_queued_then_runs(
    cluster: Cluster, ns: str
) -> None:
    async with target_service(cluster, ns), operator(cluster, ns, max_concurrent_runs=1,
                                                     queue_retry=0.5):
        await create_v2(cluster, ns, v2("first", {"requestsPerSecond": 50, "duration": "4s"}))
        await wait_v2(cluster, ns, "first", "Running", timeout=30)
        await create_v2(cluster, ns, v2("second", {"requestsPerSecond": 50, "duration": "1s"}))
        queued = await wait_v2(cluster, ns, "second", "Queued", timeout=30)
        assert queued["status"]["queuePosition"] == 1, queued["status"]
        assert "position 1" in queued["status"]["message"]
        first = await wait_v2(cluster, ns, "first", "Succeeded")
        second = await wait_v2(cluster, ns, "second", "Succeeded")
    assert second["status"]["startTime"] >= first["status"]["completionTime"]
    assert "queuePosition" not in second["status"]
    assert second["status"]["results"]["requests"] == 50


async def test_ten_workers_start_within_50_ms_of_one_another(cluster: Cluster, ns: str) -> None:
    # the start barrier: the controller writes one start time (5 s ahead) into the run's
    # LoadTestRun once all 10 pods are Running; each worker watches it with its own token
    async with target_service(cluster, ns), operator(cluster, ns):
        await create_v2(cluster, ns, v2("together", {"requestsPerSecond": 100, "duration": "2s",
                                                     "workers": 10}))
        lt = await wait_v2(cluster, ns, "together", "Succeeded")
    results = lt["status"]["results"]
    print(f"10 workers: start skew {results['startSkewMs']} ms")  # the figure for the record
    assert results["requests"] == 200
    assert 0 <= results["startSkewMs"] <= 50, results
    run = await cluster.client.request(
        "GET", f"/apis/beta.kuar.com/v1/namespaces/{ns}/loadtestruns/together-run-1")
    assert run["status"]["startAt"].endswith("Z"), run["status"]
    events = await cluster.client.request(
        "GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events")
    assert any(e.get("reason") == "StartScheduled" and "all 10 worker pod(s) are Running"
               in e.get("note", "") for e in events["items"]), events["items"]
    # the runners' identity: may read LoadTestRuns of this namespace, nothing else
    role = await cluster.client.request(
        "GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/kuar-loadgen-runner")
    assert role["rules"] == [{"apiGroups": ["beta.kuar.com"], "resources": ["loadtestruns"],
                              "verbs": ["get", "watch"]}]


async def test_runner_pods_that_never_start_fail_the_run_naming_them(
    cluster: Cluster, ns: str
) -> None:
    # no node has this label: the scheduler leaves both pods Pending (Unschedulable)
    async with target_service(cluster, ns), operator(cluster, ns, runner_start_timeout=5.0):
        await create_v2(cluster, ns, v2("stuck", {"requestsPerSecond": 10, "duration": "2s",
                                                  "workers": 2},
                                        runner={"nodeSelector": {"kuar.dev/pool": "none"}}))
        lt = await wait_v2(cluster, ns, "stuck", "Failed", timeout=60)

        async def suspended() -> None:
            job = await cluster.client.request(
                "GET", f"/apis/batch/v1/namespaces/{ns}/jobs/stuck-run-1")
            assert job["spec"]["suspend"] is True

        await eventually_async(suspended, timeout=20)
        events = await cluster.client.request(
            "GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events")
    status = lt["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Failed"]["reason"] == "RunnersNotStarted", status
    message = conditions["Failed"]["message"]
    assert message.startswith("0 of 2 worker pod(s) Running after 5s"), message
    assert "pod stuck-run-1-0-" in message and "Unschedulable" in message, message
    assert any(e.get("reason") == "RunnersNotStarted" and e.get("type") == "Warning"
               for e in events["items"]), events["items"]
    run = await cluster.client.request(
        "GET", f"/apis/beta.kuar.com/v1/namespaces/{ns}/loadtestruns/stuck-run-1")
    assert run["status"]["phase"] == "Failed" and "startAt" not in run["status"]


async def test_200_workers_give_exact_counts_and_cleanup_post_removes_the_job(
    cluster: Cluster, ns: str
) -> None:
    # Without the start barrier: it needs every worker Running at once, and the local node
    # fits 20 worker pods (2 CPUs, 100m each); here pods run in waves as others finish.
    async with target_service(cluster, ns, latency_ms=1), operator(
            cluster, ns, max_workers=200, job_deadline_slack=400.0, coordinated_start=False):
        await create_v2(cluster, ns, v2("wide", {"requestsPerSecond": 200, "duration": "3s",
                                                 "workers": 200}, cleanup="post"))
        lt = await wait_v2(cluster, ns, "wide", "Succeeded", "Failed", timeout=420)
        status = lt["status"]
        assert status["phase"] == "Succeeded", status
        assert status["results"]["requests"] == 600 and status["results"]["errors"] == 0
        assert status["results"]["successes"] == 600
        conditions = {c["type"]: c["status"] for c in status["conditions"]}
        assert conditions["ResultsComplete"] == "True" and conditions["ResultsStored"] == "True"
        assert len(json.dumps(status)) < 8192  # bounded, whatever the worker count
        result = await full_result(cluster, ns, "wide")
        assert result["shards"] == 200 and result["requests"] == 600

        async def job_gone() -> None:
            jobs = await cluster.client.request("GET", f"/apis/batch/v1/namespaces/{ns}/jobs")
            assert jobs["items"] == []

        await eventually_async(job_gone, timeout=60)
