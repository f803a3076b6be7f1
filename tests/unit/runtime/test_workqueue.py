"""WorkQueue behaviour: de-duplication, one-at-a-time keys, delays, backoff, shutdown, metrics."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from kuar.runtime import ItemExponentialFailureRateLimiter, ManualClock, QueueShutDown, WorkQueue


def make(clock: ManualClock | None = None, **kw: object) -> WorkQueue[str]:
    return WorkQueue("test", clock=clock or ManualClock(), registry=CollectorRegistry(), **kw)  # type: ignore[arg-type]


async def test_workqueue_deduplicates_pending_keys() -> None:
    q = make()
    for key in ["a", "b", "a", "a", "c", "b"]:
        q.add(key)
    assert len(q) == 3
    assert [await q.get(), await q.get(), await q.get()] == ["a", "b", "c"]


async def test_workqueue_never_runs_one_key_twice_at_once() -> None:
    q = make()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")  # added while in flight
    assert len(q) == 0, "a key in flight must not be handed out again"
    getter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.done("a")  # now it runs once more
    assert await asyncio.wait_for(getter, 1) == "a"
    q.done("a")
    assert len(q) == 0 and q.in_flight == 0


async def test_workqueue_concurrent_workers_never_overlap_on_a_key() -> None:
    q = make()
    running: set[str] = set()
    overlaps = 0
    runs: dict[str, int] = {}

    async def worker() -> None:
        nonlocal overlaps
        while True:
            try:
                key = await q.get()
            except QueueShutDown:
                return
            if key in running:
                overlaps += 1
            running.add(key)
            runs[key] = runs.get(key, 0) + 1
            await asyncio.sleep(0)
            if runs[key] < 3:
                q.add(key)  # re-added while in flight
            await asyncio.sleep(0)
            running.discard(key)
            q.done(key)

    workers = [asyncio.ensure_future(worker()) for _ in range(4)]
    for key in "abcdef":
        q.add(key)
    await asyncio.wait_for(q.shutdown(drain=True), 2)
    await asyncio.wait_for(asyncio.gather(*workers), 2)
    assert overlaps == 0
    # Keys re-added while in flight ran once more each time, unless shutdown refused the add.
    assert all(1 <= n <= 3 for n in runs.values())


async def test_workqueue_add_after_waits_for_the_clock() -> None:
    clock = ManualClock()
    q = make(clock)
    q.add_after("late", 10)
    q.add_after("early", 2)
    await clock.advance(1.9)
    assert len(q) == 0
    await clock.advance(0.2)
    assert len(q) == 1 and await q.get() == "early"
    await clock.advance(7.8)  # 9.9 s after the adds
    assert len(q) == 0
    await clock.advance(0.2)
    assert len(q) == 1 and await q.get() == "late"


async def test_workqueue_add_after_keeps_the_earliest_time() -> None:
    clock = ManualClock()
    q = make(clock)
    q.add_after("k", 10)
    q.add_after("k", 3)
    q.add_after("k", 20)
    assert q.delayed == 1
    await clock.advance(3.1)
    assert await asyncio.wait_for(q.get(), 1) == "k"
    q.done("k")
    await clock.advance(30)
    assert len(q) == 0, "a superseded delayed add must not fire again"


async def test_workqueue_rate_limited_backoff_grows_then_resets_after_forget() -> None:
    clock = ManualClock()
    limiter = ItemExponentialFailureRateLimiter(0.005, 1000)
    q = make(clock, rate_limiter=limiter)
    delays = []
    for _ in range(5):
        before = clock.monotonic()
        q.add_rate_limited("k")
        await clock.run_until_idle()
        assert await asyncio.wait_for(q.get(), 1) == "k"
        delays.append(round(clock.monotonic() - before, 6))
        q.done("k")
    assert delays == [0.005, 0.01, 0.02, 0.04, 0.08]
    assert q.num_requeues("k") == 5
    q.forget("k")
    assert q.num_requeues("k") == 0
    before = clock.monotonic()
    q.add_rate_limited("k")
    await clock.run_until_idle()
    assert await q.get() == "k"
    assert round(clock.monotonic() - before, 6) == 0.005


async def test_workqueue_backoff_of_one_key_does_not_delay_others() -> None:
    clock = ManualClock()
    q = make(clock)
    for _ in range(10):  # "bad" has failed 10 times: next retry in 5 ms * 2**10 ~ 5 s
        q.rate_limiter.when("bad")
    q.add_rate_limited("bad")
    q.add("good")
    assert await asyncio.wait_for(q.get(), 1) == "good"
    assert len(q) == 0 and q.delayed == 1


async def test_workqueue_shutdown_drains_pending_and_in_flight_keys() -> None:
    q = make()
    q.add("a")
    q.add("b")
    assert await q.get() == "a"
    shutdown = asyncio.ensure_future(q.shutdown(drain=True))
    await asyncio.sleep(0)
    q.add("c")  # refused: shutting down
    assert not shutdown.done()
    assert await q.get() == "b"  # pending keys are still handed out
    q.done("a")
    await asyncio.sleep(0)
    assert not shutdown.done(), "b is still in flight"
    q.done("b")
    await asyncio.wait_for(shutdown, 1)
    with pytest.raises(QueueShutDown):
        await q.get()


async def test_workqueue_shutdown_wakes_idle_getters() -> None:
    q = make()
    getter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    await asyncio.wait_for(q.shutdown(drain=True), 1)
    with pytest.raises(QueueShutDown):
        await asyncio.wait_for(getter, 1)


async def test_workqueue_shutdown_drops_delayed_keys() -> None:
    clock = ManualClock()
    q = make(clock)
    q.add_after("later", 5)
    await asyncio.wait_for(q.shutdown(drain=True), 1)
    await clock.advance(10)
    assert len(q) == 0 and q.delayed == 0


async def test_workqueue_cancelled_getter_passes_its_wakeup_on() -> None:
    q = make()
    first = asyncio.ensure_future(q.get())
    second = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    q.add("x")
    first.cancel()
    result = await asyncio.wait_for(second, 1)
    assert result == "x"


async def test_workqueue_records_controller_runtime_metrics() -> None:
    registry = CollectorRegistry()
    clock = ManualClock()
    q: WorkQueue[str] = WorkQueue("ctl", clock=clock, registry=registry)
    q.add("a")
    q.add("a")
    q.add("b")
    labels = {"name": "ctl", "controller": "ctl"}
    assert registry.get_sample_value("workqueue_depth", labels) == 2
    assert registry.get_sample_value("workqueue_adds_total", labels) == 2
    await clock.advance(0.5)
    key = await q.get()
    await clock.advance(2)
    assert registry.get_sample_value("workqueue_unfinished_work_seconds", labels) == 2
    assert registry.get_sample_value("workqueue_longest_running_processor_seconds", labels) == 2
    q.done(key)
    q.add_rate_limited("c")
    assert registry.get_sample_value("workqueue_retries_total", labels) == 1
    assert registry.get_sample_value("workqueue_queue_duration_seconds_count", labels) == 1
    assert registry.get_sample_value("workqueue_queue_duration_seconds_sum", labels) == 0.5
    assert registry.get_sample_value("workqueue_work_duration_seconds_sum", labels) == 2
    assert registry.get_sample_value("workqueue_depth", labels) == 1
    await q.shutdown(drain=False)
