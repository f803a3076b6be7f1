"""LoadTest run history end to end on the local cluster: schedules, LoadTestRun records,
history limit, regression against a baseline, operator restart, run-now, bad input.

The scheduled scenario is one test on purpose: a schedule of every minute is ~3 minutes of
wall time whatever is checked, so the acceptance checks that need scheduled runs share it
(restart between runs 1 and 2, a refused run-now during run 2, a slower target for run 3).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from kuar.client import Invalid
from kuar.testing import eventually_async
from tests.e2e.conftest import Cluster, operator, target_service

V2 = "/apis/beta.kuar.com/v2/namespaces/{ns}/loadtests"
RUNS = "/apis/beta.kuar.com/v1/namespaces/{ns}/loadtestruns"
RUN_NOW = "loadtest.beta.kuar.com/run-now"


def body(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "beta.kuar.com/v2", "kind": "LoadTest", "metadata": {"name": name},
            "spec": {"target": {"service": "web", "paths": ["/index.html"]},
                     "load": {"requestsPerSecond": 100, "duration": "3s"}, **spec}}


async def get_lt(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    got: dict[str, Any] = await cluster.client.request("GET", f"{V2.format(ns=ns)}/{name}")
    return got


async def runs(cluster: Cluster, ns: str) -> list[dict[str, Any]]:
    got = await cluster.client.request("GET", RUNS.format(ns=ns))
    return sorted(got["items"], key=lambda r: r["metadata"]["creationTimestamp"])


async def events(cluster: Cluster, ns: str, name: str) -> list[dict[str, Any]]:
    got = await cluster.client.request("GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events")
    return [e for e in got["items"] if e["regarding"]["name"] == name]


async def wait_runs_finished(cluster: Cluster, ns: str, name: str, count: int,
                             timeout: float) -> dict[str, Any]:
    """Until ``count`` runs have finished (``status.lastRun`` changed ``count`` times)."""
    seen: list[str] = []

    async def check() -> dict[str, Any]:
        lt = await get_lt(cluster, ns, name)
        last = (lt.get("status") or {}).get("lastRun")
        if last and last not in seen:
            seen.append(last)
        assert len(seen) >= count, (seen, lt.get("status"))
        return lt

    return await eventually_async(check, timeout=timeout, interval=0.5)


def _minute(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.timeout(480)  # ~3-4 min by design (every minute, 3 runs); the default is 300 s
async def test_every_minute_three_runs_history_limit_restart_regression_and_forbid(
    cluster: Cluster, ns: str
) -> None:
    spec = {"schedule": {"cron": "* * * * *", "concurrencyPolicy": "Forbid"},
            "historyLimit": 2,
            # p50 and wide limits: on a loaded 2-core machine p99 of a 20 ms target moved
            # from ~50 to 216 ms between two healthy runs (worker start-up lateness counts)
            "baseline": {"maxP50IncreasePercent": 300, "maxRateDecreasePercent": 10}}
    async with target_service(cluster, ns, latency_ms=20):
        async with operator(cluster, ns):
            await cluster.client.request("POST", V2.format(ns=ns), body=body("nightly", **spec))
            first = await wait_runs_finished(cluster, ns, "nightly", 1, timeout=100)
        run1 = first["status"]["lastRun"]
        assert first["status"]["phase"] == "Succeeded", first["status"]
        assert first["status"]["lastSuccessfulRun"] == run1
        # the operator is down across the next schedule time: the new one runs it late
        down_until = _minute(first["status"]["lastScheduleTime"]) + dt.timedelta(seconds=65)
        await asyncio.sleep(max(0.0, (down_until - dt.datetime.now(dt.UTC)).total_seconds()))
        async with operator(cluster, ns):
            async def second_running() -> str:
                lt = await get_lt(cluster, ns, "nightly")
                active = lt["status"].get("activeRun")
                assert active and active != run1, lt["status"]
                return str(active)

            run2 = await eventually_async(second_running, timeout=30, interval=0.2)
            # run-now while the scheduled run 2 runs: Forbid refuses it
            await cluster.client.request(
                "PATCH", f"{V2.format(ns=ns)}/nightly",
                body={"metadata": {"annotations": {RUN_NOW: "while-running"}}},
                content_type="application/merge-patch+json")
            async def second_done() -> dict[str, Any]:
                lt = await get_lt(cluster, ns, "nightly")
                assert lt["status"].get("lastRun") == run2, lt["status"]
                return lt

            second = await eventually_async(second_done, timeout=60, interval=0.5)
            assert second["status"]["phase"] == "Succeeded", second["status"]
            assert second["status"]["runNowToken"] == "while-running"
            comparison = second["status"]["comparison"]
            assert comparison["baselineRun"] == run1 and not comparison["regressed"]
            reasons = [e["reason"] for e in await events(cluster, ns, "nightly")]
            assert "RunNowForbidden" in reasons
            # the target gets slower before run 3
            async with target_service(cluster, ns, latency_ms=250):

                async def third_done() -> dict[str, Any]:
                    lt = await get_lt(cluster, ns, "nightly")
                    assert lt["status"].get("lastRun") not in (run1, run2), lt["status"]
                    return lt

                third = await eventually_async(third_done, timeout=90, interval=0.5)
    status = third["status"]
    run3 = status["lastRun"]
    assert status["phase"] == "Failed", status
    failed = {c["type"]: c for c in status["conditions"]}["Failed"]
    assert failed["reason"] == "Regression", failed
    # both figures in the message, e.g. "p50 251.2 ms vs 21.3 ms in nightly-29..."
    assert f"ms in {run2}" in status["message"] and "p50 " in status["message"], status
    assert status["lastSuccessfulRun"] == run2
    assert status["comparison"]["regressed"] and status["comparison"]["baselineRun"] == run2

    # three runs, one a minute, none run twice and none missed; history limit 2: two records
    records = await runs(cluster, ns)
    assert [r["metadata"]["name"] for r in records] == [run2, run3], records
    scheduled = [_minute(r["spec"]["scheduledTime"]) for r in records]
    assert scheduled[1] - scheduled[0] == dt.timedelta(minutes=1), scheduled
    assert all(r["spec"]["trigger"] == "Schedule" for r in records)
    assert all(r["status"]["results"]["requests"] > 0 for r in records), records
    assert records[0]["status"]["phase"] == "Succeeded"
    assert records[1]["status"]["reason"] == "Regression"
    assert records[1]["spec"]["loadTestSpec"]["schedule"]["cron"] == "* * * * *"
    started = [e for e in await events(cluster, ns, "nightly") if e["reason"] == "RunStarted"]
    assert sorted(e["note"].split()[1] for e in started) == sorted([run1, run2, run3]), started
    assert all(not e.get("series") for e in started), started  # none started twice
    deleted = [e["note"] for e in await events(cluster, ns, "nightly")
               if e["reason"] == "RunDeleted"]
    assert any(run1 in note for note in deleted), deleted
    assert _minute(first["status"]["lastScheduleTime"]) + dt.timedelta(minutes=2) == \
        scheduled[1]

    # the report: trend over runs, two runs side by side, JSON
    base = [sys.executable, "-m", "kuar.cli", "loadtest", "report", "nightly", "-n", ns,
            "--kubeconfig", str(cluster.plane.kubeconfig)]
    env = {**os.environ, "COLUMNS": "200"}  # run in the cluster's folder: the report
    # writes its default HTML file to the working folder
    html = cluster.workdir / f"{ns}.html"
    table = await asyncio.to_thread(subprocess.run, [*base, "--html", str(html)],
                                    capture_output=True, text=True, timeout=60, env=env,
                                    cwd=cluster.workdir)
    assert table.returncode == 0, table.stderr
    assert "Trend over runs" in table.stdout and run3 in table.stdout, table.stdout
    assert "Regression" in table.stdout
    # latency, rate, latency over time, errors over time, and the trend over runs
    assert html.read_text().count('alt="p50, p99 and achieved rate over runs"') == 1
    assert html.read_text().count("data:image/png;base64,") == 5
    side = await asyncio.to_thread(subprocess.run, [*base, "--compare", run2],
                                   capture_output=True, text=True, timeout=60, env=env,
                                    cwd=cluster.workdir)
    assert side.returncode == 0, side.stderr
    assert run2 in side.stdout and run3 in side.stdout and "p99 ms" in side.stdout
    as_json = await asyncio.to_thread(subprocess.run, [*base, "-o", "json", "--compare", run2],
                                      capture_output=True, text=True, timeout=60, env=env,
                                    cwd=cluster.workdir)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert [r["metadata"]["name"] for r in data["runs"]] == [run2, run3]
    assert [c["run"] for c in data["compare"]] == [run2, run3]
    assert data["compare"][1]["p99"] > data["compare"][0]["p99"]
    unknown = await asyncio.to_thread(subprocess.run, [*base, "--compare", "nope"],
                                      capture_output=True, text=True, timeout=60, env=env,
                                    cwd=cluster.workdir)
    assert unknown.returncode != 0 and 'no LoadTestRun "nope"' in unknown.stderr


async def test_run_now_while_a_scheduled_run_runs_replaces_it_under_replace(
    cluster: Cluster, ns: str
) -> None:
    spec = {"schedule": {"cron": "* * * * *", "concurrencyPolicy": "Replace"}}
    async with target_service(cluster, ns, latency_ms=2), operator(cluster, ns):
        lt = body("ondemand", **spec)
        lt["spec"]["load"]["duration"] = "40s"
        await cluster.client.request("POST", V2.format(ns=ns), body=lt)

        async def active(trigger: str) -> str:
            got = await get_lt(cluster, ns, "ondemand")
            run = (got.get("status") or {}).get("activeRun") or ""
            assert run and got["status"]["phase"] == "Running", got.get("status")
            record = await cluster.client.request("GET", f"{RUNS.format(ns=ns)}/{run}")
            assert record["spec"]["trigger"] == trigger, record["spec"]
            return str(run)

        # the first scheduled run starts at the next minute and runs for 40 s
        scheduled = await eventually_async(lambda: active("Schedule"), timeout=80,
                                           interval=0.2)
        await cluster.client.request(
            "PATCH", f"{V2.format(ns=ns)}/ondemand",
            body={"metadata": {"annotations": {RUN_NOW: "b"}}},
            content_type="application/merge-patch+json")
        on_demand = await eventually_async(lambda: active("RunNow"), timeout=30, interval=0.2)
        assert on_demand != scheduled

        async def replaced() -> dict[str, Any]:
            record: dict[str, Any] = await cluster.client.request(
                "GET", f"{RUNS.format(ns=ns)}/{scheduled}")
            status = record.get("status") or {}
            assert (status.get("phase"), status.get("reason")) == ("Failed", "Replaced"), record
            return record

        await eventually_async(replaced, timeout=30, interval=0.2)

        async def job_gone() -> None:
            jobs = await cluster.client.request("GET", f"/apis/batch/v1/namespaces/{ns}/jobs")
            names = [j["metadata"]["name"] for j in jobs["items"]
                     if not j["metadata"].get("deletionTimestamp")]
            assert scheduled not in names and on_demand in names, names

        await eventually_async(job_gone, timeout=30, interval=0.2)
        notes = [e["note"] for e in await events(cluster, ns, "ondemand")
                 if e["reason"] == "RunReplaced"]
        assert any(f"run {scheduled} stopped" in n and "Replace" in n for n in notes), notes


async def test_bad_schedule_denied_and_missing_baseline_pending(
    cluster: Cluster, ns: str
) -> None:
    with pytest.raises(Invalid, match=r"spec\.schedule\.cron"):
        await cluster.client.request("POST", V2.format(ns=ns), body=body(
            "badcron", schedule={"cron": "61 * * * *"}))
    with pytest.raises(Invalid, match=r"spec\.schedule\.timeZone"):
        await cluster.client.request("POST", V2.format(ns=ns), body=body(
            "badzone", schedule={"cron": "* * * * *", "timeZone": "Mars/Olympus"}))
    async with target_service(cluster, ns, latency_ms=2), operator(cluster, ns):
        await cluster.client.request("POST", V2.format(ns=ns), body=body(
            "nobase", baseline={"run": "nobase-run-0", "maxP99IncreasePercent": 20}))

        async def pending() -> dict[str, Any]:
            lt = await get_lt(cluster, ns, "nobase")
            status = lt.get("status") or {}
            assert status.get("phase") == "Pending", status
            return status

        status = await eventually_async(pending, timeout=30, interval=0.2)
        condition = {c["type"]: c for c in status["conditions"]}["BaselineFound"]
        assert condition["status"] == "False" and "spec.baseline.run" in condition["message"]

        async def warned() -> None:
            reasons = [e["reason"] for e in await events(cluster, ns, "nobase")]
            assert "BaselineNotFound" in reasons

        await eventually_async(warned, timeout=15)
        assert await runs(cluster, ns) == []  # nothing ran
