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
from kuar_loadgen.mix import BODY_ENV_PREFIX, MAX_BODY, MixError, RequestKind, check_mix
from kuar_loadgen.spec import path_problem
from kuar_loadgen.thresholds import ThresholdError, parse_threshold
from kuar_loadtest.api.v2 import Load, Target
from kuar_loadtest.desired import PlanError, parse_duration


def check_requests(target: Target, errors: FieldErrors) -> None:
    """The request mix by the worker's own rules (:func:`kuar_loadgen.mix.check_mix`)."""
    for i, req in enumerate(target.requests or []):
        field = f"spec.target.requests[{i}]"
        if req.body is not None and len(req.body.encode()) > MAX_BODY:
            errors.invalid(f"{field}.body", f"{len(req.body.encode())} bytes",
                           "must be at most 1 MiB")
        source = req.body_from
        if source is not None:
            refs = [r for r in (source.config_map_key_ref, source.secret_key_ref) if r]
            if len(refs) != 1:
                errors.invalid(f"{field}.bodyFrom", "", "exactly one of configMapKeyRef and "
                               "secretKeyRef")
            elif not refs[0].name:
                errors.required(f"{field}.bodyFrom.name", "the ConfigMap or Secret")
            if req.body is not None:
                errors.invalid(f"{field}.body", "", "body and bodyFrom are exclusive")
    if errors:
        return
    kinds = [RequestKind(method=r.method, path=r.path,
                         headers=tuple({**(target.headers or {}), **(r.headers or {})}.items()),
                         body_env=f"{BODY_ENV_PREFIX}{i}" if r.body_from else "",
                         weight=r.weight)
             for i, r in enumerate(target.requests or [])]
    try:
        check_mix(kinds, path_problem)
    except MixError as exc:
        where, _, detail = str(exc).partition(": ")
        errors.invalid(f"spec.target.{where}", "", detail)


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
