"""The workqueue between event handlers and reconcile workers: de-duplicating, rate limited.

Place in the pipeline: event handlers :meth:`~WorkQueue.add` request keys; the controller's
workers :meth:`~WorkQueue.get` them, reconcile, and call :meth:`~WorkQueue.done`. Known as
``workqueue.TypedRateLimitingInterface`` in client-go (the ``Type``, ``delayingType`` and
``rateLimitingType`` layers in one asyncio class) and as the scheduler/runner in kube-rs.

Guarantees:
- A key waits in the queue at most once: adding a key that is already pending is a no-op.
- A key is never handed to two workers at once. A key added while a worker holds it is
  pending again once that worker calls :meth:`~WorkQueue.done`, so it runs once more after.
- :meth:`~WorkQueue.add_after` holds a key back; several delayed adds of one key keep the
  earliest time. :meth:`~WorkQueue.add_rate_limited` delays by the rate limiter (per-item
  exponential backoff plus an overall token bucket); :meth:`~WorkQueue.forget` resets it.
- Keys are handed out in the order they became pending (FIFO).
- :meth:`~WorkQueue.shutdown` with ``drain=True`` refuses new keys, lets workers take what is
  already pending, and returns once nothing is pending or in flight; delayed keys are dropped.
Caveats: one event loop only (no locks; not thread-safe). Every :meth:`~WorkQueue.get` must be
matched by :meth:`~WorkQueue.done`, or the key is stuck and a draining shutdown waits forever
(give it a timeout).
Errors: :meth:`~WorkQueue.get` raises :class:`QueueShutDown` once the queue is shut down and
empty.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
import weakref
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry

from kuar.base.clock import SYSTEM_CLOCK, Clock, SystemClock
from kuar.runtime.metrics import runtime_metrics
from kuar.runtime.ratelimit import RateLimiter, default_controller_rate_limiter

K = TypeVar("K", bound=Hashable)


class QueueShutDown(Exception):
    """The queue is shut down and has nothing left to hand out."""


class WorkQueue(Generic[K]):
    """A de-duplicating, rate-limited, delaying work queue (see the module docstring)."""

    def __init__(
        self,
        name: str = "",
        *,
        rate_limiter: RateLimiter | None = None,
        clock: Clock = SYSTEM_CLOCK,
        registry: CollectorRegistry | None = None,
        metrics: bool = True,
    ) -> None:
        """A queue named ``name`` (the ``name``/``controller`` label of its metrics).

        ``rate_limiter`` defaults to client-go's default controller rate limiter (5 ms ->
        1000 s per item, 10 qps / 100 burst overall). ``metrics=False`` records nothing.
        """
        self.name = name
        self._clock = clock
        # one C call per reading on the system clock, instead of a method around it
        self._now = time.monotonic if type(clock) is SystemClock else clock.monotonic
        self.rate_limiter = rate_limiter or default_controller_rate_limiter(clock=clock)
        self._queue: deque[K] = deque()
        self._dirty: dict[K, float] = {}  # pending key -> when it was added
        self._processing: dict[K, float] = {}  # in-flight key -> when a worker took it
        self._waiting: dict[K, float] = {}  # delayed key -> when it becomes pending
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False
        self._idle: asyncio.Event | None = None
        self._timer_task: asyncio.Task[None] | None = None
        self._timer_wakeup: asyncio.Event | None = None
        self._sleeper: asyncio.Future[None] | None = None
        self._metrics = runtime_metrics(registry) if metrics else None
        if self._metrics is not None:
            m = self._metrics
            labels = (name, name)
            self._m_depth = m.workqueue_depth.labels(*labels)
            self._m_adds = m.workqueue_adds.labels(*labels)
            self._m_latency = m.workqueue_queue_duration.labels(*labels)
            self._m_work = m.workqueue_work_duration.labels(*labels)
            self._m_retries = m.workqueue_retries.labels(*labels)
            ref = weakref.ref(self)
            m.workqueue_unfinished_work.labels(*labels).set_function(
                lambda: q._unfinished_seconds() if (q := ref()) is not None else 0.0
            )
            m.workqueue_longest_running.labels(*labels).set_function(
                lambda: q._longest_running_seconds() if (q := ref()) is not None else 0.0
            )

    # --- state ---------------------------------------------------------------------------
    def __len__(self) -> int:
        """Keys pending now (not counting in-flight or delayed ones)."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Keys a worker holds."""
        return len(self._processing)

    @property
    def delayed(self) -> int:
        """Keys waiting for a delayed add."""
        return len(self._waiting)

    @property
    def shutting_down(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._shutting_down

    def is_pending(self, key: K) -> bool:
        """Whether ``key`` is pending or in flight (client-go's ``Find``)."""
        return key in self._dirty or key in self._processing

    def _unfinished_seconds(self) -> float:
        now = self._now()
        return sum(now - start for start in self._processing.values())

    def _longest_running_seconds(self) -> float:
        if not self._processing:
            return 0.0
        return self._now() - min(self._processing.values())

    # --- adding --------------------------------------------------------------------------
    def add(self, key: K) -> None:
        """Mark ``key`` as needing work (no-op if it already is, or after shutdown)."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty[key] = self._now()
        if self._metrics is not None:
            self._m_adds.value += 1
        if key in self._processing:
            return  # re-queued by done()
        self._push(key)

    def _push(self, key: K) -> None:
        self._queue.append(key)
        if self._metrics is not None:
            self._m_depth.value += 1
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                break

    def add_after(self, key: K, delay: float) -> None:
        """Add ``key`` after ``delay`` seconds; an earlier pending time for it wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        ready = self._now() + delay
        current = self._waiting.get(key)
        if current is not None and current <= ready:
            return
        self._waiting[key] = ready
        earliest = not self._heap or ready < self._heap[0][0]
        heapq.heappush(self._heap, (ready, next(self._seq), key))
        self._ensure_timer()
        if earliest:
            if self._sleeper is not None:
                self._sleeper.cancel()
            assert self._timer_wakeup is not None
            self._timer_wakeup.set()

    def add_rate_limited(self, key: K) -> None:
        """Add ``key`` once the rate limiter allows (a retry; counted in retries_total)."""
        if self._shutting_down:
            return
        if self._metrics is not None:
            self._m_retries.value += 1
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        """Reset ``key``'s backoff (after a success)."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        """Failures of ``key`` since it was last forgotten."""
        return self.rate_limiter.num_requeues(key)

    # --- delayed adds ---------------------------------------------------------------------
    def _ensure_timer(self) -> None:
        if self._timer_task is None:
            self._timer_wakeup = asyncio.Event()
            self._timer_task = asyncio.get_running_loop().create_task(
                self._run_timers(), name=f"workqueue-{self.name}-timers"
            )

    def _fire_ready(self) -> None:
        now = self._now()
        while self._heap and self._heap[0][0] <= now:
            ready, _, key = heapq.heappop(self._heap)
            if self._waiting.get(key) == ready:  # else superseded by an earlier add_after
                del self._waiting[key]
                self.add(key)

    async def _run_timers(self) -> None:
        assert self._timer_wakeup is not None
        while not self._shutting_down:
            self._fire_ready()
            self._timer_wakeup.clear()
            if not self._heap:
                await self._timer_wakeup.wait()
                continue
            delay = self._heap[0][0] - self._now()
            self._sleeper = asyncio.ensure_future(self._clock.sleep(delay))
            try:
                # Cancelled early by add_after when an earlier key arrives.
                await asyncio.wait([self._sleeper])
            finally:
                self._sleeper.cancel()
                self._sleeper = None

    # --- taking work ---------------------------------------------------------------------
    async def get(self) -> K:
        """Wait for a pending key and hand it out; raises :class:`QueueShutDown` when done."""
        while not self._queue:
            if self._shutting_down:
                raise QueueShutDown(self.name)
            getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                if getter.done() and not getter.cancelled() and self._queue:
                    self._wake_one()  # pass the wake-up on; this getter no longer wants it
                raise
        key = self._queue.popleft()
        now = self._now()
        added = self._dirty.pop(key, now)
        self._processing[key] = now
        if self._metrics is not None:
            self._m_depth.value -= 1
            self._m_latency.observe(now - added)
        return key

    def _wake_one(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def done(self, key: K) -> None:
        """The worker finished ``key``; if it was added meanwhile it becomes pending again."""
        started = self._processing.pop(key, None)
        if started is None:
            return
        if self._metrics is not None:
            self._m_work.observe(self._now() - started)
        if key in self._dirty:
            self._push(key)
        elif self._idle is not None and not self._processing and not self._queue:
            self._idle.set()

    # --- shutdown ------------------------------------------------------------------------
    async def shutdown(self, *, drain: bool = True) -> None:
        """Refuse new keys; with ``drain`` wait until pending and in-flight keys are done.

        Without ``drain`` pending keys are dropped and in-flight ones are left to their
        workers. Delayed keys are always dropped. Wrap in :func:`asyncio.timeout` to bound it.
        """
        self._shutting_down = True
        if self._timer_task is not None:
            self._timer_task.cancel()
            await asyncio.wait([self._timer_task])
        self._waiting.clear()
        self._heap.clear()
        if not drain:
            if self._metrics is not None:
                self._m_depth.value -= len(self._queue)
            for key in self._queue:
                self._dirty.pop(key, None)
            self._queue.clear()
        for getter in self._getters:
            if not getter.done():
                getter.set_result(None)
        self._getters.clear()
        if drain:
            self._idle = asyncio.Event()
            while self._queue or self._processing:
                self._idle.clear()
                await self._idle.wait()
