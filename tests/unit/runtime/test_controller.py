"""The reconcile contract as the controller runs it (injected clock, no API server)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kuar.client import AlreadyExists, Conflict, TooManyRequests
from kuar.runtime import (
    Controller,
    ControllerSettings,
    EventType,
    ManualClock,
    ReconcileContextFilter,
    Request,
    Result,
    Store,
    TerminalError,
    WatchEvent,
)

A, B, C = Request("ns", "a"), Request("ns", "b"), Request("ns", "c")


class Harness:
    def __init__(self, reconcile: Callable[[Request], Awaitable[Result | None]],
                 **settings: Any) -> None:
        self.clock = ManualClock()
        self.registry = CollectorRegistry()
        self.calls: list[tuple[float, Request]] = []

        async def recording(req: Request) -> Result | None:
            self.calls.append((round(self.clock.monotonic() - 1000.0, 6), req))
            return await reconcile(req)

        self.store: Store[Any] = Store()
        self.controller = Controller(
            "test", recording, watches=[], wait_for=[self.store], clock=self.clock,
            registry=self.registry, settings=ControllerSettings(**settings),
        )
        self.task: asyncio.Task[None] | None = None

    def sync(self) -> None:
        self.store.apply(WatchEvent(EventType.INIT, None, None, ""))
        self.store.apply(WatchEvent(EventType.INIT_DONE, None, None, "1"))

    async def start(self, synced: bool = True) -> None:
        if synced:
            self.sync()
        self.task = asyncio.ensure_future(self.controller.run())
        await self.clock.advance(0)

    def times(self, req: Request) -> list[float]:
        return [t for t, r in self.calls if r == req]

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {"controller": "test", **labels})

    async def stop(self) -> None:
        self.controller.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)


@pytest.fixture
async def harnesses() -> AsyncIterator[list[Harness]]:
    made: list[Harness] = []
    yield made
    for h in made:
        if h.task is not None and not h.task.done():
            await h.stop()


async def test_failing_reconcile_of_one_key_does_not_delay_others(harnesses: list[Harness]) -> None:
    async def reconcile(req: Request) -> Result | None:
        if req == A:
            raise RuntimeError("broken object")
        return None

    h = Harness(reconcile)
    harnesses.append(h)
    await h.start()
    h.controller.enqueue([A])
    await h.clock.advance(0)
    for _ in range(12):  # A fails again and again: its backoff grows to ~10 s
        await h.clock.advance(h.clock.next_deadline - h.clock.monotonic())  # type: ignore[operator]
    h.controller.enqueue([B, C])
    await h.clock.advance(0)
    assert h.times(B) == h.times(C) == [h.times(A)[-1]], "B and C ran at once, at no delay"
    assert h.metric("controller_runtime_reconcile_total", result="error") == 13
    assert h.metric("controller_runtime_reconcile_total", result="success") == 2


async def test_backoff_grows_then_resets_after_a_success(harnesses: list[Harness]) -> None:
    outcomes = iter(["fail"] * 4 + ["ok"] + ["fail"] * 2 + ["ok"])

    async def reconcile(req: Request) -> Result | None:
        if next(outcomes) == "fail":
            raise RuntimeError("transient")
        return Result.done()

    h = Harness(reconcile)
    harnesses.append(h)
    await h.start()
    h.controller.enqueue([A])
    await h.clock.run_until_idle()
    times = h.times(A)
    assert len(times) == 5
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(times)]
    assert gaps == [0.005, 0.01, 0.02, 0.04]
    h.controller.enqueue([A])  # a new event after the success
    await h.clock.run_until_idle()
    times = h.times(A)[5:]
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(times)]
    assert gaps == [0.005, 0.01], "backoff started over after the success"
    assert h.controller.queue.num_requeues(A) == 0


async def test_terminal_error_is_recorded_and_not_retried(harnesses: list[Harness]) -> None:
    async def reconcile(req: Request) -> Result | None:
        raise TerminalError("spec.replicas must be positive")

    h = Harness(reconcile)
    harnesses.append(h)
    await h.start()
    h.controller.enqueue([A])
    await h.clock.advance(0)
    await h.clock.advance(5000)
    assert len(h.times(A)) == 1
    assert h.metric("controller_runtime_terminal_reconcile_errors_total") == 1
    assert h.metric("controller_runtime_reconcile_errors_total") == 1
    assert h.metric("controller_runtime_reconcile_total", result="error") == 1


async def test_requeue_after_and_rate_limited_requeue(harnesses: list[Harness]) -> None:
    results = iter([Result.requeue(after=30), Result.requeue(), Result.done()])

    async def reconcile(req: Request) -> Result | None:
        return next(results)

    h = Harness(reconcile)
    harnesses.append(h)
    await h.start()
    h.controller.enqueue([A])
    await h.clock.run_until_idle()
    assert h.times(A) == [0.0, 30.0, 30.005]
    assert h.metric("controller_runtime_reconcile_total", result="requeue_after") == 1
    assert h.metric("controller_runtime_reconcile_total", result="requeue") == 1
    assert h.metric("controller_runtime_reconcile_total", result="success") == 1


async def test_429_from_the_api_server_waits_retry_after(harnesses: list[Harness]) -> None:
    calls = 0

    async def reconcile(req: Request) -> Result | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TooManyRequests(code=429, reason="TooManyRequests", message="slow down",
                                  retry_after=7.0)
        return None

    h = Harness(reconcile)
    harnesses.append(h)
    await h.start()
    h.controller.enqueue([A])
    await h.clock.run_until_idle()
    assert h.times(A) == [0.0, 7.0]


async def test_a_conflict_is_retried_and_logged_at_info_without_a_traceback(
    harnesses: list[Harness], caplog: pytest.LogCaptureFixture
) -> None:
    errors = iter([
        Conflict(code=409, reason="Conflict", message="the object has been modified"),
        AlreadyExists(code=409, reason="AlreadyExists", message="already exists"),
    ])

    async def reconcile(req: Request) -> Result | None:
        exc = next(errors, None)
        if exc is not None:
            raise exc
        return None

    h = Harness(reconcile)
    harnesses.append(h)
    with caplog.at_level(logging.INFO, logger="kuar.runtime.controller"):
        await h.start()
        h.controller.enqueue([A])
        await h.clock.run_until_idle()
    assert h.times(A) == [0.0, 0.005, 0.015], "both retried with the key's backoff"
    mine = [r for r in caplog.records
            if r.name == "kuar.runtime.controller" and "reconcile of" in r.getMessage()]
    conflict, exists = mine
    assert conflict.levelno == logging.INFO and conflict.exc_info is None
    assert "409 Conflict" in conflict.getMessage()
    assert exists.levelno == logging.ERROR, "AlreadyExists is not a stale read"
    assert h.metric("controller_runtime_reconcile_errors_total") == 2


async def test_no_reconcile_runs_before_the_caches_are_synced(harnesses: list[Harness]) -> None:
    async def reconcile(req: Request) -> Result | None:
        return None

    h = Harness(reconcile)
    harnesses.append(h)
    await h.start(synced=False)
    h.controller.enqueue([A, A, B])
    await h.clock.advance(1)
    assert h.calls == []
    h.sync()
    await h.clock.advance(0)
    assert sorted(r.name for _, r in h.calls) == ["a", "b"], "queued keys de-duplicated"


async def test_concurrent_reconciles_are_bounded(harnesses: list[Harness]) -> None:
    running = 0
    peak = 0
    gate = asyncio.Event()

    async def reconcile(req: Request) -> Result | None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        return None

    h = Harness(reconcile, max_concurrent_reconciles=3)
    harnesses.append(h)
    await h.start()
    h.controller.enqueue([Request("ns", str(i)) for i in range(10)])
    await h.clock.advance(0)
    assert running == 3
    assert h.metric("controller_runtime_active_workers") == 3
    assert h.metric("controller_runtime_max_concurrent_reconciles") == 3
    gate.set()
    await h.clock.advance(0)
    assert len(h.calls) == 10 and peak == 3


async def test_stop_drains_running_reconciles(harnesses: list[Harness]) -> None:
    gate = asyncio.Event()
    finished: list[Request] = []

    async def reconcile(req: Request) -> Result | None:
        await gate.wait()
        finished.append(req)
        return None

    h = Harness(reconcile)
    harnesses.append(h)
    await h.start()
    h.controller.enqueue([A, B])
    await h.clock.advance(0)
    h.controller.stop()
    await h.clock.advance(0)
    assert h.task is not None and not h.task.done(), "waits for the running reconcile"
    gate.set()
    await asyncio.wait_for(h.task, 2)
    assert finished == [A, B], "pending keys are drained too"


async def test_reconcile_logs_carry_the_key_and_a_reconcile_id(
    harnesses: list[Harness], caplog: pytest.LogCaptureFixture
) -> None:
    user_log = logging.getLogger("user.reconciler")

    async def reconcile(req: Request) -> Result | None:
        user_log.info("reconciling")
        raise RuntimeError("boom")

    h = Harness(reconcile)
    harnesses.append(h)
    caplog.handler.addFilter(ReconcileContextFilter())
    with caplog.at_level(logging.INFO):
        await h.start()
        h.controller.enqueue([A])
        await h.clock.advance(0)
        await h.clock.advance(0.005)
    mine = [r for r in caplog.records if r.name == "user.reconciler"]
    errors = [r for r in caplog.records if r.name == "kuar.runtime.controller"
              and r.levelno == logging.ERROR]
    assert len(mine) == 2 and len(errors) == 2
    assert {r.key for r in mine} == {"ns/a"}  # type: ignore[attr-defined]
    ids = [r.reconcile_id for r in mine]  # type: ignore[attr-defined]
    assert len(set(ids)) == 2 and all(ids), "a fresh id per reconcile"
    assert [r.reconcile_id for r in errors] == ids  # type: ignore[attr-defined]
    assert all(r.controller == "test" for r in mine + errors)  # type: ignore[attr-defined]


async def test_cancelling_run_still_lets_the_running_reconcile_finish(
    harnesses: list[Harness],
) -> None:
    gate = asyncio.Event()
    finished: list[Request] = []

    async def reconcile(req: Request) -> Result | None:
        await gate.wait()
        finished.append(req)
        return None

    h = Harness(reconcile)
    await h.start()
    h.controller.enqueue([A])
    await h.clock.advance(0)
    assert h.task is not None
    h.task.cancel()
    await h.clock.advance(0)
    assert not h.task.done()
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(h.task, 2)
    assert finished == [A]


def test_watch_predicates_filter_changes_before_the_handler() -> None:
    from kuar.runtime import Cached, Change, ObjectView, Watch, generation_changed

    def state(gen: int) -> Cached[ObjectView]:
        o = ObjectView({"metadata": {"name": "a", "namespace": "ns", "generation": gen}})
        return Cached(o, o.metadata)

    controller = Controller("p", lambda r: asyncio.sleep(0), watches=[],  # type: ignore[arg-type,return-value]
                            registry=CollectorRegistry())
    watch: Watch[Any] = Watch(None, lambda c: [c.key], (generation_changed,))  # type: ignore[arg-type]
    on_change = controller._enqueuer(watch)
    on_change(Change(A, state(1), state(1)))  # status-only update: filtered
    assert len(controller.queue) == 0
    on_change(Change(A, state(1), state(2)))
    assert len(controller.queue) == 1
