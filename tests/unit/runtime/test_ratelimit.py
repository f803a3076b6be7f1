"""Rate limiters and backoff: growth, caps, reset, token bucket, jitter."""

from __future__ import annotations

import random

from kuar.runtime import (
    Backoff,
    BackoffSettings,
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    ManualClock,
    MaxOfRateLimiter,
    default_controller_rate_limiter,
)


def test_item_backoff_doubles_from_5ms_to_1000s_per_item() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("a") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1000.0
    assert max(delays) == 1000.0
    assert limiter.when("b") == 0.005, "items back off independently"
    for _ in range(200):
        limiter.when("a")  # no overflow after many failures
    assert limiter.when("a") == 1000.0


def test_item_backoff_resets_after_forget() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    for _ in range(5):
        limiter.when("a")
    assert limiter.num_requeues("a") == 5
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 0.005


def test_bucket_allows_burst_then_paces_at_qps() -> None:
    clock = ManualClock()
    bucket = BucketRateLimiter(qps=10, burst=3, clock=clock)
    assert [bucket.when(i) for i in range(3)] == [0, 0, 0]
    assert round(bucket.when(3), 6) == 0.1
    assert round(bucket.when(4), 6) == 0.2
    clock._now += 10  # refills, but never above burst
    assert [bucket.when(i) for i in range(3)] == [0, 0, 0]
    assert bucket.when(9) > 0


def test_default_controller_limiter_is_the_max_of_item_and_bucket() -> None:
    clock = ManualClock()
    limiter = default_controller_rate_limiter(clock=clock)
    assert isinstance(limiter, MaxOfRateLimiter)
    assert limiter.when("x") == 0.005
    # 100 more failures of other items exhaust the bucket: the next retry waits for a token.
    for i in range(100):
        limiter.when(f"y{i}")
    assert limiter.when("z") > 0.005


def test_backoff_grows_with_jitter_caps_and_resets_after_quiet_period() -> None:
    clock = ManualClock()
    backoff = Backoff(BackoffSettings(), clock=clock, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    bases = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30]
    for delay, base in zip(delays, bases, strict=True):
        assert base <= delay <= 2 * base
    clock._now += 121  # no failure for more than reset_after
    assert 0.8 <= backoff.next_delay() <= 1.6


def test_backoff_without_jitter_is_exact() -> None:
    backoff = Backoff(BackoffSettings(jitter=0), clock=ManualClock())
    assert [backoff.next_delay() for _ in range(3)] == [0.8, 1.6, 3.2]
    backoff.reset()
    assert backoff.next_delay() == 0.8
