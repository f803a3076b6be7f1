"""A finished run compared with its baseline run, and whether it regressed (pure).

Place in the pipeline: :mod:`kuar_loadtest.controller` calls :func:`compare` when a run
succeeds, with the run's results and the baseline's (the run named in
``spec.baseline.run``, else the LoadTest's last successful run, read from its LoadTestRun
record). A regression turns the run into phase Failed, reason ``Regression``, with both
figures in the message; the comparison goes into the LoadTest's and the record's status and
into ``kuar loadtest report``.

Rules: latency figures (p50, p99, in ms) regress when they grow by more than their
``max...IncreasePercent``; the achieved rate regresses when it falls by more than
``maxRateDecreasePercent``. A limit left unset is not checked, but the figure is still
compared. A baseline figure of 0 gives a change of 0 % (no ratio exists); such a baseline
never flags a regression.
"""

from __future__ import annotations

from kuar_loadtest.api.status import Comparison, LoadTestResults, MetricComparison
from kuar_loadtest.api.v2 import Baseline

UNITS = {"p50": "ms", "p99": "ms", "achievedRps": "req/s"}


def _change(baseline: float, current: float) -> float:
    return 0.0 if baseline == 0 else (current - baseline) / baseline * 100.0


def compare(run: str, results: LoadTestResults, baseline_run: str,
            baseline: LoadTestResults, limits: Baseline | None) -> Comparison:
    """``results`` of ``run`` next to ``baseline`` of ``baseline_run``, under ``limits``."""
    figures = (
        ("p50", baseline.latency_ms.p50, results.latency_ms.p50,
         limits.max_p50_increase_percent if limits else None, 1.0),
        ("p99", baseline.latency_ms.p99, results.latency_ms.p99,
         limits.max_p99_increase_percent if limits else None, 1.0),
        ("achievedRps", baseline.achieved_rps, results.achieved_rps,
         limits.max_rate_decrease_percent if limits else None, -1.0),
    )
    metrics: list[MetricComparison] = []
    worse: list[str] = []
    for metric, before, now, limit, sign in figures:
        change = _change(before, now)
        regressed = limit is not None and sign * change > limit
        metrics.append(MetricComparison(metric=metric, baseline=before, current=now,
                                        change_percent=round(change, 2), limit_percent=limit,
                                        regressed=regressed))
        if regressed:
            unit = UNITS[metric]
            bound = f"+{limit:g}" if sign > 0 else f"-{limit:g}"
            worse.append(f"{metric} {now:g} {unit} vs {before:g} {unit} in {baseline_run} "
                         f"({change:+.1f} %, limit {bound} %)")
    if worse:
        message = "regression against " + baseline_run + ": " + "; ".join(worse)
    else:
        message = f"no regression against {baseline_run}: " + ", ".join(
            f"{m.metric} {m.change_percent:+.1f} %" for m in metrics)
    return Comparison(run=run, baseline_run=baseline_run, metrics=metrics,
                      regressed=bool(worse), message=message[:1024])
