"""Watcher protocol edge cases against a scripted HTTP fake at the transport seam."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kuar.client import ResourceInfo
from kuar.runtime import (
    EventType,
    Informer,
    WatchConfig,
    WatcherSettings,
    WatchEvent,
    object_view,
    watcher,
)
from kuar.runtime.backoff import BackoffSettings

from .fakeapi import FakeApi, RecordingClock, cm, page, start_fake, status

CM = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeApi, Any]]:
    api, runner, client = await start_fake()
    try:
        yield api, client
    finally:
        api.release.set()
        await client.close()
        await runner.cleanup()


async def take(
    stream: AsyncIterator[WatchEvent[Any]], n: int, timeout: float = 5
) -> list[WatchEvent[Any]]:
    out: list[WatchEvent[Any]] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.append(await anext(stream))
    return out


def kinds(events: list[WatchEvent[Any]]) -> list[tuple[str, str]]:
    return [(e.type.name, e.meta.name if e.meta else e.resource_version) for e in events]


async def test_watcher_lists_in_pages_then_watches_from_the_list_version(fake: Any) -> None:
    api, client = fake
    api.lists = [page([cm("a", "5")], "10", cont="tok"), page([cm("b", "6")], "10")]
    api.watches = [api.stream([
        {"type": "ADDED", "object": cm("c", "11")},
        {"type": "MODIFIED", "object": cm("a", "12")},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}},
        {"type": "DELETED", "object": cm("b", "21")},
    ])]
    stream = watcher(client, CM, WatchConfig(namespace="ns", label_selector="app=x", page_size=1),
                     registry=CollectorRegistry())
    events = await take(stream, 7)
    assert kinds(events) == [("INIT", ""), ("INIT_APPLY", "a"), ("INIT_APPLY", "b"),
                             ("INIT_DONE", "10"), ("APPLY", "c"), ("APPLY", "a"), ("DELETE", "b")]
    assert events[1].object is not None and events[1].object.kind == "ConfigMap", \
        "list items get apiVersion/kind"
    # the server closed the stream: the next watch resumes from the last version seen
    pull = asyncio.ensure_future(anext(stream))  # the generator only runs while pulled
    await asyncio.wait_for(_until(lambda: len(api.of("watch")) >= 2), 5)
    pull.cancel()
    await asyncio.wait([pull])
    await stream.aclose()  # type: ignore[attr-defined]
    lists, watches = api.of("list"), api.of("watch")
    assert [p.get("limit") for p in lists] == ["1", "1"] and lists[1]["continue"] == "tok"
    assert all(p["labelSelector"] == "app=x" for p in lists + watches)
    assert watches[0]["resourceVersion"] == "10" and watches[0]["allowWatchBookmarks"] == "true"
    assert 300 <= int(watches[0]["timeoutSeconds"]) <= 600
    assert watches[1]["resourceVersion"] == "21"
    assert len(lists) == 2, "a resumed watch does not relist"


async def test_watcher_relists_after_410_gone_as_an_error_event(fake: Any) -> None:
    api, client = fake
    api.lists = [page([cm("a", "5")], "10"), page([cm("b", "30")], "30")]
    api.watches = [api.stream([
        {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                     "message": "too old resource version"}},
    ], end="hang")]
    registry = CollectorRegistry()
    stream = watcher(client, CM, registry=registry)
    events = await take(stream, 6)
    await stream.aclose()  # type: ignore[attr-defined]
    assert kinds(events) == [("INIT", ""), ("INIT_APPLY", "a"), ("INIT_DONE", "10"),
                             ("INIT", ""), ("INIT_APPLY", "b"), ("INIT_DONE", "30")]
    assert "resourceVersion" not in api.of("list")[1], "a relist reads the newest state"
    assert registry.get_sample_value(
        "kuar_watch_restarts_total", {"resource": "configmaps", "reason": "gone"}) == 1


async def test_watcher_relists_after_410_gone_as_http_status(fake: Any) -> None:
    api, client = fake
    api.lists = [page([], "10"), page([cm("b", "30")], "30")]
    api.watches = [status(410, reason="Expired")]
    clock = RecordingClock()
    stream = watcher(client, CM, clock=clock, registry=CollectorRegistry())
    events = await take(stream, 5)
    await stream.aclose()  # type: ignore[attr-defined]
    assert kinds(events)[2:] == [("INIT", ""), ("INIT_APPLY", "b"), ("INIT_DONE", "30")]
    assert clock.sleeps == [], "410 relists at once, without backoff"


async def test_watcher_reopens_a_silent_dead_stream(fake: Any) -> None:
    api, client = fake
    api.lists = [page([], "10")]
    api.watches = [api.stream([{"type": "ADDED", "object": cm("a", "11")}], end="hang"),
                   api.stream([{"type": "ADDED", "object": cm("b", "12")}], end="hang")]
    registry = CollectorRegistry()
    stream = watcher(client, CM, settings=WatcherSettings(inactivity_timeout=0.3),
                     registry=registry)
    events = await take(stream, 4)
    await stream.aclose()  # type: ignore[attr-defined]
    assert kinds(events)[2:] == [("APPLY", "a"), ("APPLY", "b")]
    assert api.of("watch")[1]["resourceVersion"] == "11"
    assert registry.get_sample_value(
        "kuar_watch_restarts_total", {"resource": "configmaps", "reason": "inactive"}) == 1


async def test_only_a_silent_read_times_out_and_outside_cancels_propagate(
    fake: Any,
) -> None:
    api, client = fake
    api.lists = [page([], "10")]
    api.watches = [api.stream([{"type": "ADDED", "object": cm("a", "11")},
                               {"type": "ADDED", "object": cm("b", "12")}], end="hang"),
                   api.stream([{"type": "ADDED", "object": cm("c", "13")}], end="hang")]
    registry = CollectorRegistry()
    stream = watcher(client, CM, settings=WatcherSettings(inactivity_timeout=0.2),
                     registry=registry)
    events = await take(stream, 3)
    await asyncio.sleep(0.5)  # the consumer busy for longer than the timeout, between lines
    events += await take(stream, 1)
    assert kinds(events)[2:] == [("APPLY", "a"), ("APPLY", "b")]
    assert len(api.of("watch")) == 1, "a pause between lines is not silence"
    # read from another task: its silent read times out (not this task), and the watch
    # reopens
    event = await asyncio.wait_for(asyncio.ensure_future(anext(stream)), 5)
    assert kinds([event]) == [("APPLY", "c")]
    assert registry.get_sample_value(
        "kuar_watch_restarts_total", {"resource": "configmaps", "reason": "inactive"}) == 1
    reading = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)  # waiting on the silent stream
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    await stream.aclose()  # type: ignore[attr-defined]
    assert len(api.of("watch")) == 2, "an outside cancel does not reopen the watch"


async def test_watcher_honours_retry_after_on_429(fake: Any) -> None:
    api, client = fake
    api.lists = [status(429, headers={"Retry-After": "3"}), page([cm("a", "5")], "10")]
    clock = RecordingClock()
    stream = watcher(client, CM, clock=clock, registry=CollectorRegistry())
    events = await take(stream, 4)  # INIT of the throttled attempt, then the full list
    await stream.aclose()  # type: ignore[attr-defined]
    assert kinds(events)[-2:] == [("INIT_APPLY", "a"), ("INIT_DONE", "10")]
    assert clock.sleeps == [3.0]


async def test_watcher_backs_off_exponentially_while_the_server_fails(fake: Any) -> None:
    api, client = fake
    api.lists = [status(500), status(503), status(500), status(500), page([], "10")]
    clock = RecordingClock()
    settings = WatcherSettings(backoff=BackoffSettings(jitter=0))
    stream = watcher(client, CM, clock=clock, settings=settings, registry=CollectorRegistry())
    events = await take(stream, 6)  # one INIT per attempt, then INIT_DONE
    await stream.aclose()  # type: ignore[attr-defined]
    assert events[-1].type is EventType.INIT_DONE
    assert clock.sleeps == [0.8, 1.6, 3.2, 6.4]


async def test_watcher_resumes_after_a_dropped_connection(fake: Any) -> None:
    api, client = fake
    api.lists = [page([], "10")]
    api.watches = [api.stream([{"type": "ADDED", "object": cm("a", "11")}], end="drop"),
                   api.stream([{"type": "ADDED", "object": cm("b", "12")}], end="hang")]
    clock = RecordingClock()
    stream = watcher(client, CM, clock=clock, registry=CollectorRegistry())
    events = await take(stream, 4)
    await stream.aclose()  # type: ignore[attr-defined]
    assert kinds(events)[2:] == [("APPLY", "a"), ("APPLY", "b")]
    assert api.of("watch")[1]["resourceVersion"] == "11"
    assert len(api.of("list")) == 1


async def test_watcher_skips_objects_the_decode_hook_rejects(
    fake: Any, caplog: pytest.LogCaptureFixture
) -> None:
    api, client = fake
    api.lists = [page([cm("bad", "5"), cm("good", "6")], "10")]
    api.watches = [api.stream([
        {"type": "ADDED", "object": cm("bad2", "11")},
        {"type": "ADDED", "object": cm("good2", "12")},
        {"type": "ADDED", "object": {"no": "metadata"}},
        {"type": "DELETED", "object": cm("bad", "13")},
    ], end="hang")]

    def decode(raw: dict[str, Any]) -> str:
        if raw["metadata"]["name"].startswith("bad"):
            raise ValueError("not a valid object")
        return str(raw["metadata"]["name"])

    registry = CollectorRegistry()
    stream = watcher(client, CM, decode=decode, registry=registry)
    with caplog.at_level(logging.ERROR, logger="kuar.runtime.watcher"):
        events = await take(stream, 5)
    await stream.aclose()  # type: ignore[attr-defined]
    assert [(e.type.name, e.object) for e in events] == [
        ("INIT", None), ("INIT_APPLY", "good"), ("INIT_DONE", None), ("APPLY", "good2"),
        ("DELETE", None)]
    assert events[-1].meta is not None and events[-1].meta.name == "bad", \
        "an undecodable delete still names the object"
    assert registry.get_sample_value("kuar_decode_errors_total", {"resource": "configmaps"}) == 4
    assert "cannot decode configmaps ns/bad" in caplog.text


async def _until(check: Any) -> None:
    while not check():
        await asyncio.sleep(0.01)


async def test_informer_starts_over_after_a_malformed_answer(fake: Any) -> None:
    api, client = fake

    async def no_version(request: Any) -> Any:
        from aiohttp import web
        return web.json_response({"kind": "ConfigMapList", "metadata": {}, "items": []})

    api.lists = [no_version, page([cm("a", "5")], "10")]
    clock = RecordingClock()
    informer = Informer(client, CM, WatchConfig(), decode=object_view, clock=clock,
                        registry=CollectorRegistry())
    informer.start()
    try:
        await informer.wait_until_synced(5)
        assert [o.name for o in informer.store.list()] == ["a"]
        assert len(clock.sleeps) == 1, "one backoff before starting over"
    finally:
        await informer.stop()
