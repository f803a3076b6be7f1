"""Events about objects land as events.k8s.io/v1 Events, aggregated into series."""

from __future__ import annotations

from typing import Any

from kuar.client import Client
from kuar.runtime.recorder import EventRecorder, RecorderSettings


async def _events(client: Client, ns: str) -> list[dict[str, Any]]:
    listed = await client.request("GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events")
    return list(listed["items"])


async def test_repeated_events_form_one_series_and_distinct_ones_stay_apart(
    kube_client: Client, namespace: str
) -> None:
    cm = await kube_client.request(
        "POST", f"/api/v1/namespaces/{namespace}/configmaps", body={"metadata": {"name": "obj"}}
    )
    recorder = EventRecorder(kube_client, RecorderSettings(controller="kuar.dev/test"))
    for _ in range(5):
        recorder.event(cm, "Normal", "Synced", "children are up to date")
        await recorder.flush()
    recorder.event(cm, "Warning", "Failed", "could not do it")
    await recorder.close()

    events = await _events(kube_client, namespace)
    by_reason = {e["reason"]: e for e in events}
    assert sorted(by_reason) == ["Failed", "Synced"] and len(events) == 2
    synced = by_reason["Synced"]
    assert synced["series"]["count"] == 5
    assert synced["regarding"]["name"] == "obj" and synced["regarding"]["kind"] == "ConfigMap"
    assert synced["reportingController"] == "kuar.dev/test"
    assert by_reason["Failed"]["type"] == "Warning"


async def test_rate_limit_drops_a_burst_of_distinct_events_about_one_object(
    kube_client: Client, namespace: str
) -> None:
    cm = await kube_client.request(
        "POST", f"/api/v1/namespaces/{namespace}/configmaps", body={"metadata": {"name": "noisy"}}
    )
    recorder = EventRecorder(kube_client, RecorderSettings(controller="kuar.dev/test", burst=3))
    for i in range(10):
        recorder.event(cm, "Normal", "Step", f"step {i}")
    await recorder.close()
    events = await _events(kube_client, namespace)
    assert sorted(e["note"] for e in events) == ["step 0", "step 1", "step 2"]
