"""Exponential backoff with jitter that starts over after a quiet period.

Place in the pipeline: the watcher waits by it between failed list/watch attempts (the
workqueue has its own per-item limiters in :mod:`kuar.runtime.ratelimit`). Known as
``wait.Backoff`` + ``BackoffManager`` in client-go's reflector and ``DefaultBackoff``
(``ResetTimerBackoff``) in kube-rs; kuar uses their defaults (0.8 s doubling to 30 s, reset
after 2 min without failures).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from kuar.base.clock import SYSTEM_CLOCK, Clock


@dataclass(frozen=True, kw_only=True)
class BackoffSettings:
    """How long to wait between retries of a failing connection."""

    initial: float = 0.8
    """First wait: long enough not to hammer a restarting API server, short enough that a
    blip costs under a second (client-go and kube-rs use 800 ms)."""
    factor: float = 2.0
    """Each further failure doubles the wait."""
    max_delay: float = 30.0
    """Cap: an API server that is down for minutes is still retried twice a minute."""
    jitter: float = 1.0
    """Each wait is stretched by a random 0..jitter fraction, so many clients that lost the
    same server do not come back in lockstep."""
    reset_after: float = 120.0
    """A failure more than this long after the previous one starts over at ``initial``."""


class Backoff:
    """Yields growing waits; restarts at ``initial`` after ``reset_after`` quiet seconds."""

    def __init__(
        self,
        settings: BackoffSettings | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        """A fresh backoff."""
        self.settings = settings or BackoffSettings()
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._attempt = 0
        self._last_failure: float | None = None

    @property
    def attempt(self) -> int:
        """Consecutive failures counted so far (0 after a reset)."""
        return self._attempt

    def reset(self) -> None:
        """Start over at ``initial`` on the next failure."""
        self._attempt = 0
        self._last_failure = None

    def next_delay(self) -> float:
        """Record a failure and return how long to wait before the next try."""
        s = self.settings
        now = self._clock.monotonic()
        if self._last_failure is not None and now - self._last_failure > s.reset_after:
            self._attempt = 0
        self._last_failure = now
        base = min(s.initial * s.factor ** min(self._attempt, 64), s.max_delay)
        self._attempt += 1
        return base * (1.0 + s.jitter * self._rng.random())
