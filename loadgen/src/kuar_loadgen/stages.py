"""Rate profiles: a constant rate, or stages with linear ramps, as an exact open-loop schedule.

Place in the pipeline: pure math. :class:`~kuar_loadgen.spec.LoadSpec` builds its
:class:`RateProfile` (:meth:`LoadSpec.profile`); :mod:`kuar_loadgen.worker` asks it when each
request is due, :mod:`kuar_loadgen.runner` how many requests there are, and the LoadTest report
draws :meth:`RateProfile.expected_per_second` as the requested rate.

A profile is a start rate and a list of stages ``(duration, target)``: during a stage the rate
moves linearly from the previous stage's target (the start rate for the first) to its own
target; a stage whose target equals the rate before it holds that rate. ``N(t)``, the expected
number of arrivals by ``t``, is the integral of the rate; request ``i`` is due at the ``t``
where ``N(t) = i`` (for a constant rate: ``i / rate``, exactly what :mod:`.schedule` says).

Guarantees:

- Open loop throughout: due times depend on the profile only, never on responses.
- The run's requests are ``i = 0 .. total - 1`` with ``total = ceil(N(end))`` (rounded to
  1e-6 first, as :func:`kuar_loadgen.schedule.total_requests`), so sharding by index
  (:func:`kuar_loadgen.schedule.slots`) stays exact: shards together issue every request once.
- A constant profile computes due times as ``i / rate`` (the same floats as before stages).

Caveats: a stage at rate 0 sends nothing (a pause); a profile whose rate is 0 throughout has
no requests and is refused by :func:`check_stages`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

MAX_STAGES = 100
"""Most stages a profile may have (a LoadTest's list is bounded the same way)."""


class StageError(ValueError):
    """A stage list is invalid; the message names the stage (``stages[2].duration``)."""


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage: reach ``target`` requests/s linearly over ``duration`` seconds."""

    duration: float
    """Seconds, > 0."""
    target: float
    """Requests per second at the end of the stage, >= 0."""


def check_stages(start_rate: float, stages: Sequence[Stage]) -> None:
    """Raise :class:`StageError` naming the first bad value; a profile with no request too."""
    if not (math.isfinite(start_rate) and start_rate >= 0):
        raise StageError(f"startRate: must be >= 0, got {start_rate}")
    if not stages:
        raise StageError("stages: at least one stage is needed")
    if len(stages) > MAX_STAGES:
        raise StageError(f"stages: at most {MAX_STAGES}, got {len(stages)}")
    for i, stage in enumerate(stages):
        if not (math.isfinite(stage.duration) and stage.duration > 0):
            raise StageError(f"stages[{i}].duration: must be > 0, got {stage.duration}")
        if not (math.isfinite(stage.target) and stage.target >= 0):
            raise StageError(f"stages[{i}].target: must be >= 0, got {stage.target}")
    if RateProfile(start_rate, stages).total == 0:
        raise StageError("stages: the profile sends no request (every rate is 0)")


class RateProfile:
    """A piecewise-linear rate over time and the due time of each request under it."""

    __slots__ = (
        "_begin_count",
        "_begin_time",
        "_segments",
        "due",
        "duration",
        "peak",
        "total",
    )

    def __init__(self, start_rate: float, stages: Sequence[Stage]) -> None:
        """Build the profile (validate with :func:`check_stages` first)."""
        self._segments: list[tuple[float, float, float, float]] = []  # t0, d, r0, r1
        self._begin_time: list[float] = []
        self._begin_count: list[float] = []
        t, count, rate = 0.0, 0.0, start_rate
        for stage in stages:
            self._segments.append((t, stage.duration, rate, stage.target))
            self._begin_time.append(t)
            self._begin_count.append(count)
            count += (rate + stage.target) / 2 * stage.duration
            t += stage.duration
            rate = stage.target
        self.duration = t
        """Length of the profile in seconds."""
        self.peak = max([start_rate, *(s.target for s in stages)])
        """The highest rate anywhere in the profile."""
        self.total = max(0, math.ceil(round(count, 6)))
        """How many requests the profile issues."""
        constant = len(stages) == 1 and stages[0].target == start_rate
        self.due = self._due_constant if constant else self._due_staged
        """Seconds after ``t0`` at which global request ``i`` is due."""

    @classmethod
    def constant(cls, rate: float, duration: float) -> RateProfile:
        """``rate`` requests/s for ``duration`` seconds."""
        return cls(rate, [Stage(duration, rate)])

    def _due_constant(self, index: int) -> float:
        return index / self._segments[0][2]

    def _due_staged(self, index: int) -> float:
        k = bisect.bisect_right(self._begin_count, index) - 1
        # skip stages with no arrivals (rate 0 throughout) that begin at the same count
        while k + 1 < len(self._segments) and self._begin_count[k + 1] <= index:
            k += 1
        t0, d, r0, r1 = self._segments[k]
        left = index - self._begin_count[k]
        a = (r1 - r0) / (2 * d)
        # a*s^2 + r0*s = left, in the form that stays exact as a -> 0 and for r0 = 0
        root = math.sqrt(max(0.0, r0 * r0 + 4 * a * left))
        s = 2 * left / (r0 + root) if r0 + root > 0 else 0.0
        return t0 + min(s, d)

    def rate_at(self, t: float) -> float:
        """The requested rate at ``t`` seconds after the start (0 outside the profile)."""
        if t < 0 or t >= self.duration:
            return 0.0
        k = bisect.bisect_right(self._begin_time, t) - 1
        t0, d, r0, r1 = self._segments[k]
        return r0 + (r1 - r0) * (t - t0) / d

    def arrivals(self, t: float) -> float:
        """``N(t)``: expected arrivals by ``t`` seconds (the integral of the rate)."""
        if t <= 0:
            return 0.0
        if t >= self.duration:
            t = self.duration
        k = bisect.bisect_right(self._begin_time, t) - 1
        t0, d, r0, r1 = self._segments[k]
        s = t - t0
        return self._begin_count[k] + r0 * s + (r1 - r0) / (2 * d) * s * s

    def expected_per_second(self) -> list[int]:
        """How many requests are due in each whole second of the run (the requested rate)."""
        seconds = math.ceil(round(self.duration, 6))

        def due_before(t: float) -> int:  # the count of i with due(i) < t
            return min(self.total, max(0, math.ceil(round(self.arrivals(t), 6))))

        return [due_before(sec + 1) - due_before(sec) for sec in range(seconds)]
