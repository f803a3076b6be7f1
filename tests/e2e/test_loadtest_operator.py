"""The LoadTest extension end to end on a local cluster: load really flows, results come back."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kuar.client import NotFound
from kuar.testing import eventually_async
from tests.e2e.conftest import (
    CRASHER_IMAGE,
    Cluster,
    create,
    loadtest,
    operator,
    publish,
    target_service,
    wait_phase,
)


async def _get(cluster: Cluster, path: str) -> dict[str, Any]:
    got: dict[str, Any] = await cluster.client.request("GET", path)
    return got


async def _gone(cluster: Cluster, path: str) -> None:
    try:
        await cluster.client.request("GET", path)
    except NotFound:
        return
    raise AssertionError(f"{path} still exists")


async def _events(cluster: Cluster, ns: str) -> list[dict[str, Any]]:
    got = await _get(cluster, f"/apis/events.k8s.io/v1/namespaces/{ns}/events")
    return list(got["items"])


async def test_loadtest_runs_at_the_requested_rate_and_is_garbage_collected(
    cluster: Cluster, ns: str, tmp_path: Path
) -> None:
    async with target_service(cluster, ns, latency_ms=20), operator(cluster, ns):
        await create(cluster, ns, loadtest("steady", requestsPerSecond=1000, duration="5s"))
        lt = await wait_phase(cluster, ns, "steady", "Succeeded")
    status = lt["status"]
    results = status["results"]
    assert abs(results["achievedRps"] - 1000) <= 20, results  # within 2 %
    assert results["requests"] == 5000 and results["errors"] == 0
    latency = results["latencyMs"]
    assert 20 <= latency["p50"] <= 200, latency  # the service answers after 20 ms
    assert latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert status["observedGeneration"] == lt["metadata"]["generation"]
    complete = {c["type"]: c for c in status["conditions"]}["Complete"]
    assert complete["status"] == "True" and complete["reason"] == "Completed"
    assert status["startTime"] <= status["completionTime"]

    job = await _get(cluster, f"/apis/batch/v1/namespaces/{ns}/jobs/{status['jobName']}")
    assert job["metadata"]["ownerReferences"][0]["uid"] == lt["metadata"]["uid"]
    pods = await _get(cluster, f"/api/v1/namespaces/{ns}/pods?labelSelector=job-name%3D"
                               f"{status['jobName']}")
    assert pods["items"] and all(
        p["metadata"]["ownerReferences"][0]["kind"] == "Job" for p in pods["items"])
    reasons = {e["reason"] for e in await _events(cluster, ns)
               if e["regarding"]["name"] == "steady"}
    assert {"Started", "Completed"} <= reasons

    html = tmp_path / "steady.html"
    report = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "kuar.cli", "loadtest", "report", "steady", "-n", ns,
        "--kubeconfig", str(cluster.plane.kubeconfig), "--html", str(html)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "COLUMNS": "200"})
    assert report.returncode == 0, report.stderr
    assert "achieved rate" in report.stdout and "Succeeded" in report.stdout
    page = html.read_text()
    # latency by percentile, rate, latency over time, errors over time, and the trend over
    # the LoadTest's runs (its one LoadTestRun)
    assert page.count("data:image/png;base64,") == 5
    as_json = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "kuar.cli", "loadtest", "report", "steady", "-n", ns,
        "--kubeconfig", str(cluster.plane.kubeconfig), "-o", "json"],
        capture_output=True, text=True, timeout=60, check=False)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["loadTest"]["status"]["phase"] == "Succeeded"
    assert data["result"]["version"] >= 1

    await cluster.client.request("DELETE", f"/apis/beta.kuar.com/v1/namespaces/{ns}/"
                                           "loadtests/steady")
    await eventually_async(lambda: _gone(
        cluster, f"/apis/batch/v1/namespaces/{ns}/jobs/{status['jobName']}"), timeout=60)
    await eventually_async(lambda: _gone(
        cluster, f"/api/v1/namespaces/{ns}/configmaps/steady-results"), timeout=60)

    async def no_pods() -> None:
        left = await _get(cluster, f"/api/v1/namespaces/{ns}/pods")
        assert left["items"] == []

    await eventually_async(no_pods, timeout=60)


async def test_a_stalled_target_shows_in_p99_no_coordinated_omission(
    cluster: Cluster, ns: str
) -> None:
    # The service holds every request arriving 3 to 4 s after the first one: an open-loop
    # generator keeps sending and measures from each request's due time.
    async with target_service(cluster, ns, latency_ms=2, stall_at=3.0), operator(cluster, ns):
        await create(cluster, ns, loadtest("stall", requestsPerSecond=200, duration="6s"))
        lt = await wait_phase(cluster, ns, "stall", "Succeeded")
    latency = lt["status"]["results"]["latencyMs"]
    assert latency["p99"] >= 900, latency
    assert latency["p50"] < 100, latency


async def test_unreachable_target_fails_with_a_reason(cluster: Cluster, ns: str) -> None:
    closed = 9  # nothing listens on 127.0.0.1:9 (discard); connections are refused
    await publish(cluster, ns, "web", closed)
    async with operator(cluster, ns):
        await create(cluster, ns, loadtest("dead", requestsPerSecond=50, duration="2s"))
        lt = await wait_phase(cluster, ns, "dead", "Failed")
    status = lt["status"]
    failed = {c["type"]: c for c in status["conditions"]}["Failed"]
    assert failed["reason"] == "TargetUnreachable", status
    assert "no request got an answer" in status["message"]


async def test_service_without_the_requested_port_fails(cluster: Cluster, ns: str) -> None:
    async with target_service(cluster, ns), operator(cluster, ns):
        await create(cluster, ns, loadtest("wrongport", port=9999))
        lt = await wait_phase(cluster, ns, "wrongport", "Failed")
    assert {c["type"]: c for c in lt["status"]["conditions"]}["Failed"]["reason"] == \
        "PortNotFound"


async def test_missing_service_waits_with_condition_and_event_then_runs(
    cluster: Cluster, ns: str
) -> None:
    async with operator(cluster, ns):
        await create(cluster, ns, loadtest("early", duration="2s"))
        lt = await wait_phase(cluster, ns, "early", "Pending")
        cond = {c["type"]: c for c in lt["status"]["conditions"]}["ServiceResolved"]
        assert cond["status"] == "False" and cond["reason"] == "ServiceNotFound"

        async def warned() -> None:
            events = await _events(cluster, ns)
            assert any(e["reason"] == "ServiceNotFound" and e["type"] == "Warning"
                       for e in events)

        await eventually_async(warned, timeout=20)
        async with target_service(cluster, ns):
            await wait_phase(cluster, ns, "early", "Succeeded")


async def test_crashing_worker_fails_with_the_pods_reason(cluster: Cluster, ns: str) -> None:
    async with target_service(cluster, ns), operator(cluster, ns, image=f"{CRASHER_IMAGE}:1"):
        await create(cluster, ns, loadtest("crash"))
        lt = await wait_phase(cluster, ns, "crash", "Failed")
    message = lt["status"]["message"]
    assert "exited with code 3" in message and "cannot start: boom" in message, message


async def test_unsupported_image_fails_clearly(cluster: Cluster, ns: str) -> None:
    async with target_service(cluster, ns), operator(cluster, ns, image="nginx:1.27"):
        await create(cluster, ns, loadtest("nginx"))
        lt = await wait_phase(cluster, ns, "nginx", "Failed")
    failed = {c["type"]: c for c in lt["status"]["conditions"]}["Failed"]
    assert failed["reason"] == "UnsupportedImage" and "nginx:1.27" in failed["message"]


async def test_spec_change_starts_a_new_run(cluster: Cluster, ns: str) -> None:
    async with target_service(cluster, ns), operator(cluster, ns):
        await create(cluster, ns, loadtest("change", duration="60s"))
        first = await wait_phase(cluster, ns, "change", "Running")
        old_job = first["status"]["jobName"]
        await cluster.client.request(
            "PATCH", f"/apis/beta.kuar.com/v1/namespaces/{ns}/loadtests/change",
            body={"spec": {"duration": "2s"}}, content_type="application/merge-patch+json")
        lt = await wait_phase(cluster, ns, "change", "Succeeded")
        assert lt["status"]["observedGeneration"] == 2
        assert lt["status"]["jobName"] != old_job
        await eventually_async(lambda: _gone(
            cluster, f"/apis/batch/v1/namespaces/{ns}/jobs/{old_job}"), timeout=30)


async def test_deleting_a_running_loadtest_stops_its_pods(cluster: Cluster, ns: str) -> None:
    async with target_service(cluster, ns), operator(cluster, ns):
        await create(cluster, ns, loadtest("midrun", duration="60s"))
        await wait_phase(cluster, ns, "midrun", "Running")

        async def running_pod() -> int:
            pods = await _get(cluster, f"/api/v1/namespaces/{ns}/pods")
            running = [p for p in pods["items"] if p["status"].get("phase") == "Running"]
            assert running
            container_id = running[0]["status"]["containerStatuses"][0]["containerID"]
            return int(container_id.rsplit("/", 1)[1])

        pid = await eventually_async(running_pod, timeout=30)
        await cluster.client.request(
            "DELETE", f"/apis/beta.kuar.com/v1/namespaces/{ns}/loadtests/midrun")

        async def stopped() -> None:
            pods = await _get(cluster, f"/api/v1/namespaces/{ns}/pods")
            assert pods["items"] == []
            jobs = await _get(cluster, f"/apis/batch/v1/namespaces/{ns}/jobs")
            assert jobs["items"] == []

        await eventually_async(stopped, timeout=60)
        try:
            os.kill(pid, 0)
            raise AssertionError(f"worker process {pid} still runs")
        except ProcessLookupError:
            pass


async def test_a_results_configmap_the_loadtest_does_not_own_is_left_alone(
    cluster: Cluster, ns: str
) -> None:
    # issue 14, finding 4: a forced apply used to take over any existing "<name>-results"
    # ConfigMap, which garbage collection then deleted along with the LoadTest
    theirs = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "mine-results", "namespace": ns},
              "data": {"owner": "someone else"}}
    await cluster.client.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body=theirs)
    async with target_service(cluster, ns), operator(cluster, ns):
        await create(cluster, ns, loadtest("mine", requestsPerSecond=50, duration="1s"))
        lt = await wait_phase(cluster, ns, "mine", "Succeeded")
    conditions = {c["type"]: c for c in lt["status"]["conditions"]}
    assert conditions["ResultsStored"]["status"] == "False", conditions
    assert conditions["ResultsStored"]["reason"] == "ResultsConfigMapNotOwned"
    assert conditions["ResultsComplete"]["status"] == "True"
    path = f"/api/v1/namespaces/{ns}/configmaps/mine-results"
    cm = await cluster.client.request("GET", path)
    assert cm["data"] == {"owner": "someone else"} and not cm["metadata"].get("ownerReferences")

    async def warned() -> None:
        assert "ResultsConfigMapNotOwned" in {e.get("reason") for e in await _events(cluster, ns)}

    await eventually_async(warned, timeout=30)
    mine = f"/apis/beta.kuar.com/v1/namespaces/{ns}/loadtests/mine"
    await cluster.client.request("DELETE", mine)
    await eventually_async(lambda: _gone(cluster, mine), timeout=30)
    await asyncio.sleep(2)  # time for garbage collection, had the ConfigMap been taken over
    assert (await cluster.client.request("GET", path))["data"] == {"owner": "someone else"}


async def test_an_externalname_service_is_refused_as_a_target(cluster: Cluster, ns: str) -> None:
    # issue 14, finding 2: an ExternalName Service in the LoadTest's namespace pointed the load
    # at any host
    await cluster.client.request("POST", f"/api/v1/namespaces/{ns}/services", body={
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "elsewhere"},
        "spec": {"type": "ExternalName", "externalName": "example.com",
                 "ports": [{"port": 80}]}})
    async with operator(cluster, ns):
        await create(cluster, ns, loadtest("away", service="elsewhere", duration="1s"))
        lt = await wait_phase(cluster, ns, "away", "Failed")
    failed = {c["type"]: c for c in lt["status"]["conditions"]}["Failed"]
    assert failed["reason"] == "ExternalNameNotAllowed", lt["status"]
    jobs = await cluster.client.request("GET", f"/apis/batch/v1/namespaces/{ns}/jobs")
    assert jobs["items"] == []  # no worker ever started


async def test_a_loadtest_over_the_namespace_rate_budget_waits_then_runs(
    cluster: Cluster, ns: str
) -> None:
    # issue 14, finding 2: the rate cap was per object, with no total
    async with target_service(cluster, ns), operator(
        cluster, ns, max_namespace_requests_per_second=100, budget_retry=1.0
    ):
        await create(cluster, ns, loadtest("first", requestsPerSecond=60, duration="4s"))
        await wait_phase(cluster, ns, "first", "Running")
        await create(cluster, ns, loadtest("second", requestsPerSecond=60, duration="1s"))
        waiting = await wait_phase(cluster, ns, "second", "Pending")
        budget = {c["type"]: c for c in waiting["status"]["conditions"]}["RateBudget"]
        assert budget["reason"] == "RateBudgetExceeded", waiting["status"]
        assert "already runs 60" in waiting["status"]["message"]
        await wait_phase(cluster, ns, "first", "Succeeded")
        done = await wait_phase(cluster, ns, "second", "Succeeded")
    assert done["status"]["results"]["requests"] == 60
