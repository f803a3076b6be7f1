"""Two rows for the v2 load model: stage accuracy and multi-process scaling of kuar-loadgen.

Place in the pipeline: called by :mod:`bench.loadgen.__main__` with the nginx it started.

- Stage accuracy: a ramp 500 -> 3,000 -> 0 req/s (linear stages), one process on the client
  core; per second, the requests written (the timeline's ``sent``) against the profile's
  requests due (:meth:`kuar_loadgen.stages.RateProfile.expected_per_second`). Reported: the
  mean and the worst absolute error over the seconds where the profile asks for something.
- Multi-process scaling: the highest open-loop rate kuar-loadgen holds (achieved within 3 %
  of asked, rising 1.5x per step from 10,000/s) with ``--processes 1`` and ``--processes 2``,
  unpinned (the machine's 2 cores, nginx included): the ratio is what a second process buys.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from bench.loadgen.tools import pinned, timed
from kuar_loadgen.stages import RateProfile, Stage

STAGES = ((3.0, 3000.0), (3.0, 3000.0), (3.0, 0.0))
"""(seconds, target req/s): ramp up, hold, ramp down."""
START = 500.0
"""The rate the ramp starts from."""


def run(url: str, args: list[str], *, seconds: float, core: int | None) -> dict[str, Any]:
    """One kuar-loadgen run with ``args``; its JSON result."""
    cmd = [sys.executable, "-m", "kuar_loadgen", "--url", url, "--timeout", "1",
           "--connections", "256", "--json", "--no-progress", *args]
    try:
        out, _ = timed(pinned(core, cmd), timeout=seconds + 60)
    except subprocess.CalledProcessError as exc:
        print(f"kuar-loadgen {' '.join(args)} failed: {(exc.stderr or '')[-2000:]}",
              file=sys.stderr)
        raise
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@dataclass
class StageAccuracy:
    """Per-second error of the requests written against the profile."""

    mean_pct: float
    worst_pct: float
    seconds: list[tuple[int, int]] = field(default_factory=list)
    """(due, sent) per second."""


def stage_accuracy(url: str, *, core: int | None, scale: float = 1.0) -> StageAccuracy:
    """Run the ramp (durations times ``scale``) and compare each second with the profile."""
    stages = [(d * scale, r) for d, r in STAGES]
    profile = RateProfile(START, [Stage(d, r) for d, r in stages])
    args = ["--processes", "1", "--start-rate", str(START),
            *(a for d, r in stages for a in ("--stage", f"{d}:{r}"))]
    result = run(url, args, seconds=profile.duration, core=core)
    due = profile.expected_per_second()
    sent = result["timeline"].get("sent") or []
    pairs = [(want, sent[i] if i < len(sent) else 0) for i, want in enumerate(due)]
    errors = [abs(got - want) / want * 100 for want, got in pairs if want > 0]
    return StageAccuracy(mean_pct=sum(errors) / len(errors), worst_pct=max(errors),
                         seconds=pairs)


def max_rate(url: str, *, processes: int, seconds: int, max_runs: int) -> float:
    """The best achieved rate (responses inside the window per second) while rising."""
    rate, best, misses = 10_000.0, 0.0, 0
    for _ in range(max_runs):
        result = run(url, ["--processes", str(processes), "--rps", str(rate),
                           "--duration", str(seconds)], seconds=seconds, core=None)
        achieved = sum(result["timeline"]["responses"][:seconds]) / seconds
        best = max(best, achieved)
        if achieved < 0.97 * rate:
            misses += 1
            if misses == 2:
                break
            continue
        rate, misses = rate * 1.5, 0
    return best
