"""Admission checks of the v2 load model: the rate (or stages), thresholds and request mix.

Place in the pipeline: called by :class:`kuar_loadtest.webhooks.LoadTestValidator` on the v2
object the API server sends; each problem is added to a :class:`kuar.webhook.FieldErrors`
under its v2 field path (``spec.load.stages[1].duration``), so one denial names every bad
field. The worker checks its own input again (:mod:`kuar_loadgen.stages`), and the controller
refuses what only it can see, so a LoadTest admitted while the webhook was down cannot crash a
worker.
"""

from __future__ import annotations

from kuar.webhook import FieldErrors
from kuar_loadgen.thresholds import ThresholdError, parse_threshold
from kuar_loadtest.api.v2 import Load
from kuar_loadtest.desired import PlanError, parse_duration


def check_thresholds(thresholds: list[str] | None, errors: FieldErrors) -> None:
    """Each threshold must parse (kuar-loadgen's grammar); a bad one is named by index."""
    for i, text in enumerate(thresholds or []):
        try:
            parse_threshold(text)
        except ThresholdError as exc:
            errors.invalid(f"spec.thresholds[{i}]", text, str(exc))


def check_load(load: Load, errors: FieldErrors, *, cap: int) -> int:
    """Check the rate or the stages against ``cap``; return the peak rate (0 if unknown)."""
    if not load.stages:
        rps = load.requests_per_second
        if rps is None:
            errors.required("spec.load.requestsPerSecond", "or spec.load.stages")
            return 0
        if rps <= 0:
            errors.invalid("spec.load.requestsPerSecond", rps, "must be greater than 0")
        elif rps > cap:
            errors.invalid("spec.load.requestsPerSecond", rps, f"must be at most {cap}")
        return rps
    start = load.start_rate or 0
    if start > cap:
        errors.invalid("spec.load.startRate", start, f"must be at most {cap}")
    peak, sends = start, start > 0
    for i, stage in enumerate(load.stages):
        field = f"spec.load.stages[{i}]"
        try:
            seconds = parse_duration(stage.duration, f"{field}.duration")
        except PlanError as exc:
            errors.invalid(f"{field}.duration", stage.duration, str(exc))
        else:
            if seconds <= 0:
                errors.invalid(f"{field}.duration", stage.duration, "must be greater than 0")
        if stage.target < 0:
            errors.invalid(f"{field}.target", stage.target, "must be at least 0")
        elif stage.target > cap:
            errors.invalid(f"{field}.target", stage.target, f"must be at most {cap}")
        peak, sends = max(peak, stage.target), sends or stage.target > 0
    if not sends:
        errors.invalid("spec.load.stages", "all 0", "at least one stage must have a rate above 0")
    return peak
