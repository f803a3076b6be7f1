"""Events about objects land as events.k8s.io/v1 Events, aggregated into series."""

from __future__ import annotations

from typing import Any

from kuar.client import Client
from kuar.runtime import WatchConfig
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


async def test_an_undecodable_object_is_skipped_with_an_event_and_a_metric(
    kube_client: Client, namespace: str
) -> None:
    import asyncio

    from prometheus_client import CollectorRegistry

    from kuar.client import ResourceInfo
    from kuar.runtime import InformerCache, decode_with_events

    def strict(raw: dict[str, Any]) -> dict[str, Any]:
        if (raw["metadata"].get("labels") or {}).get("broken") == "yes":
            raise ValueError("spec.size: must be a number")
        return raw

    registry = CollectorRegistry()
    recorder = EventRecorder(kube_client, RecorderSettings(controller="kuar.dev/test"))
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await kube_client.request("POST", path, body={"metadata": {"name": "good"}})
    await kube_client.request(
        "POST", path, body={"metadata": {"name": "bad", "labels": {"broken": "yes"}}})
    cache = InformerCache(kube_client, registry=registry)
    informer = cache.informer(ResourceInfo("", "v1", "ConfigMap", "configmaps", True),
                              WatchConfig(namespace=namespace),
                              decode=decode_with_events(strict, recorder))
    async with cache:
        await cache.wait_until_synced(30)
        names = sorted(o["metadata"]["name"] for o in informer.store.list())
        assert "good" in names and "bad" not in names  # the bad one is skipped
        await recorder.flush()
    events = await _events(kube_client, namespace)
    bad = [e for e in events if e["regarding"]["name"] == "bad"]
    assert bad and bad[0]["reason"] == "InvalidObject" and bad[0]["type"] == "Warning"
    assert "spec.size: must be a number" in bad[0]["note"]
    value = registry.get_sample_value("kuar_decode_errors_total", {"resource": "configmaps"})
    assert value is not None and value >= 1
    await asyncio.sleep(0)
