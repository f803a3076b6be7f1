"""Time: a small :class:`Clock` protocol, the system clock and a manual one.

Place in the pipeline: the base layer, below every timed part of the runtime (watcher backoff,
workqueue delays and rate limiters, metrics of durations) and of the webhooks (certificate
renewal). Known as ``k8s.io/utils/clock`` in client-go.

Tests inject :class:`ManualClock` so backoff and delay logic runs without real sleeping: time
moves only when the test calls :meth:`ManualClock.advance`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    """What kuar needs from time: a monotonic reading, the wall time and an awaitable sleep."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (only differences are meaningful)."""
        ...

    def now(self) -> dt.datetime:
        """The wall time, timezone-aware UTC (certificate lifetimes, timestamps)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` of this clock's time have passed."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic` and :func:`asyncio.sleep`."""

    def monotonic(self) -> float:
        """See :meth:`Clock.monotonic`."""
        return time.monotonic()

    def now(self) -> dt.datetime:
        """See :meth:`Clock.now`."""
        return dt.datetime.now(dt.UTC)

    async def sleep(self, seconds: float) -> None:
        """See :meth:`Clock.sleep`."""
        await asyncio.sleep(max(0.0, seconds))


SYSTEM_CLOCK = SystemClock()
"""The shared real clock; the default of every runtime component."""


class ManualClock:
    """A clock that moves only when told to, for tests of timing logic.

    ``sleep`` parks the caller until :meth:`advance` moves time past its deadline. Sleepers
    wake in deadline order, and the event loop runs between wake-ups, so code that reacts to a
    wake-up (for example by sleeping again) sees the time of that wake-up.
    """

    def __init__(
        self, start: float = 1000.0, *,
        wall: dt.datetime = dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
    ) -> None:
        """Start at ``start`` seconds (not zero, so "time 0 means unset" bugs show up).

        :meth:`now` starts at ``wall`` and moves with the manual time.
        """
        self._start = start
        self._wall = wall
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self.sleeps: list[float] = []
        """Every duration passed to :meth:`sleep`, in call order (for assertions)."""

    def monotonic(self) -> float:
        """The current manual time."""
        return self._now

    def now(self) -> dt.datetime:
        """``wall`` plus the manual time that has passed."""
        return self._wall + dt.timedelta(seconds=self._now - self._start)

    async def sleep(self, seconds: float) -> None:
        """Wait until :meth:`advance` has moved time ``seconds`` forward."""
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), future))
        await future

    @property
    def next_deadline(self) -> float | None:
        """The earliest time a sleeper waits for, or ``None`` when nobody sleeps."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # cancelled sleepers
        return self._sleepers[0][0] if self._sleepers else None

    async def advance(self, seconds: float) -> None:
        """Move time ``seconds`` forward, waking every sleeper whose deadline passes."""
        target = self._now + seconds
        await _settle()
        while True:
            deadline = self.next_deadline
            if deadline is None or deadline > target:
                break
            _, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            future.set_result(None)
            await _settle()
        self._now = target
        await _settle()

    async def run_until_idle(self, limit: float = 1e7) -> None:
        """Advance to each pending deadline in turn until nobody sleeps (or ``limit`` passes)."""
        start = self._now
        while True:
            await _settle()
            deadline = self.next_deadline
            if deadline is None or deadline - start > limit:
                return
            await self.advance(deadline - self._now)


async def _settle(rounds: int = 20) -> None:
    """Let every ready task run (a few loop iterations) without moving time."""
    for _ in range(rounds):
        await asyncio.sleep(0)
