"""A LoadTest's thresholds judged on its merged result: the ``ThresholdsMet`` condition.

Place in the pipeline: pure; called by :mod:`kuar_loadtest.controller` when a run has ended,
with the :class:`~kuar_loadtest.status.RunState` that :mod:`.status` computed. The grammar and
the numbers are kuar-loadgen's (:mod:`kuar_loadgen.thresholds`), so ``kuar-loadgen
--threshold`` in CI and a LoadTest agree.

Rules:
- No ``spec.thresholds``: the state is unchanged and there is no condition.
- A run that did not produce a merged result (it failed before): ``ThresholdsMet=Unknown``.
- Every threshold holds: ``ThresholdsMet=True`` (reason ``ThresholdsHeld``), state unchanged.
- One is crossed: ``ThresholdsMet=False`` and a Succeeded run becomes Failed with reason
  ``ThresholdsCrossed``; the message lists each crossed threshold with the observed value.
  A run stopped early by ``abortOnFail`` says so.
"""

from __future__ import annotations

from dataclasses import replace

from kuar_loadgen.thresholds import ThresholdError, evaluate, parse_thresholds
from kuar_loadtest.api.v2 import LoadTest
from kuar_loadtest.status import RunState

Condition = tuple[str, str, str, str]
"""(type, status, reason, message), as the controller writes conditions."""


def judge(lt: LoadTest, state: RunState) -> tuple[RunState, Condition | None]:
    """``state`` with the thresholds applied, and the ``ThresholdsMet`` condition."""
    texts = lt.spec.thresholds or []
    if not texts:
        return state, None
    try:
        thresholds = parse_thresholds(texts)
    except ThresholdError as exc:  # admitted while the webhook was down
        return state, ("ThresholdsMet", "Unknown", "InvalidThreshold", f"spec.{exc}")
    if state.merged is None:
        return state, ("ThresholdsMet", "Unknown", "NoResults",
                       "the run produced no result to judge")
    verdict = evaluate(thresholds, state.merged)
    if verdict.ok:
        return state, ("ThresholdsMet", "True", "ThresholdsHeld", verdict.describe())
    message = verdict.describe()
    if state.merged.aborted:
        message = f"{message}; stopped early (abortOnFail)"
    condition = ("ThresholdsMet", "False", "ThresholdsCrossed", message)
    if state.phase != "Succeeded":
        return state, condition
    return replace(state, phase="Failed", reason="ThresholdsCrossed", message=message), condition
