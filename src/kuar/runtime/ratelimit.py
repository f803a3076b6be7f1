"""Rate limiters for the workqueue: per-item exponential backoff and an overall token bucket.

Place in the pipeline: consulted by :meth:`kuar.runtime.workqueue.WorkQueue.add_rate_limited`
(retries after a failed or requeued reconcile); plain adds from watch events never wait.
Known as ``workqueue.RateLimiter`` in client-go (``ItemExponentialFailureRateLimiter``,
``BucketRateLimiter``, ``MaxOfRateLimiter``, ``DefaultControllerRateLimiter``).

Guarantees: the n-th consecutive failure of one item waits ``base * 2**(n-1)`` seconds, capped
at ``max_delay``; :meth:`RateLimiter.forget` (called after a success) starts the item over at
``base``. One item's failures never change another item's delay, except through the shared
token bucket, which only bites when more than ``burst`` retries happen faster than ``qps``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

from kuar.base.clock import SYSTEM_CLOCK, Clock


class RateLimiter(Protocol):
    """Decides how long an item waits before it is retried."""

    def when(self, item: Hashable) -> float:
        """Seconds ``item`` should wait now; counts one more failure for it."""
        ...

    def forget(self, item: Hashable) -> None:
        """Stop tracking ``item`` (its next failure starts over)."""
        ...

    def num_requeues(self, item: Hashable) -> int:
        """How many failures ``item`` has had since it was last forgotten."""
        ...


class ItemExponentialFailureRateLimiter:
    """Per item: ``base * 2**failures`` seconds, capped at ``max_delay``."""

    def __init__(self, base: float = 0.005, max_delay: float = 1000.0) -> None:
        """Backoff from ``base`` seconds doubling up to ``max_delay`` seconds."""
        self.base = base
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        """See :meth:`RateLimiter.when`."""
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        if exp >= 64:  # 2**64 * base overflows any sane cap
            return self.max_delay
        return min(self.base * float(1 << exp), self.max_delay)

    def forget(self, item: Hashable) -> None:
        """See :meth:`RateLimiter.forget`."""
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        """See :meth:`RateLimiter.num_requeues`."""
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """An overall token bucket: ``qps`` tokens a second, at most ``burst`` saved up.

    Like ``golang.org/x/time/rate``'s ``Reserve``: a caller that finds no token still gets
    one, in the future, and is told how long to wait for it.
    """

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock = SYSTEM_CLOCK) -> None:
        """A bucket that starts full."""
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.monotonic()

    def when(self, item: Hashable) -> float:
        """See :meth:`RateLimiter.when`; the item itself does not matter."""
        now = self._clock.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: Hashable) -> None:
        """Nothing to forget: the bucket is shared."""

    def num_requeues(self, item: Hashable) -> int:
        """Always 0: the bucket does not count per item."""
        return 0


class MaxOfRateLimiter:
    """The longest wait of several limiters (each one counts the failure)."""

    def __init__(self, *limiters: RateLimiter) -> None:
        """Combine ``limiters``."""
        self.limiters = limiters

    def when(self, item: Hashable) -> float:
        """See :meth:`RateLimiter.when`."""
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: Hashable) -> None:
        """See :meth:`RateLimiter.forget`."""
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        """See :meth:`RateLimiter.num_requeues`."""
        return max(limiter.num_requeues(item) for limiter in self.limiters)


@dataclass(frozen=True, kw_only=True)
class RateLimiterSettings:
    """The default controller rate limiter (client-go's ``DefaultControllerRateLimiter``)."""

    base_delay: float = 0.005
    """First retry after 5 ms: a conflict on update usually clears at once."""
    max_delay: float = 1000.0
    """Cap of ~16.7 min, reached after 18 consecutive failures; a broken object is still
    retried, rarely enough not to load the API server."""
    qps: float = 10.0
    """Overall retries per second across all items, so a mass failure (the API server down)
    does not turn into a retry storm."""
    burst: int = 100
    """Retries allowed at once before ``qps`` applies."""


def default_controller_rate_limiter(
    settings: RateLimiterSettings | None = None, clock: Clock = SYSTEM_CLOCK
) -> RateLimiter:
    """Per-item exponential backoff combined with the overall token bucket."""
    s = settings or RateLimiterSettings()
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(s.base_delay, s.max_delay),
        BucketRateLimiter(s.qps, s.burst, clock),
    )
