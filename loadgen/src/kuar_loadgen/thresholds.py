"""Pass/fail thresholds on a run's result: ``p99 < 50ms``, ``errorRate < 1%``, ...

Place in the pipeline: pure. ``kuar-loadgen --threshold`` checks them on its result (exit
:data:`EXIT_THRESHOLDS` when one is crossed, for CI), a worker with ``abort_on_fail`` checks
them every second on what it has seen so far (:mod:`kuar_loadgen.worker`), and the LoadTest
controller checks a LoadTest's ``spec.thresholds`` on the merged result of all workers
(condition ``ThresholdsMet``), so all three agree on the grammar and the numbers.

Grammar: ``METRIC OP VALUE[UNIT]``, spaces optional.

- Latency from due time: ``p50``, ``p90``, ``p95``, ``p99``, ``p999``, ``max``, ``mean``;
  units ``us``, ``ms`` (default), ``s``. ``p95`` is read from the merged histogram.
- ``errorRate``: errors (transport failures and 4xx/5xx) per request due, in ``%``.
- ``achievedRate``: the achieved response rate as a share of the requested rate, in ``%``.
- ``OP`` is one of ``<``, ``<=``, ``>``, ``>=``: the condition that must *hold*.

Guarantees: :func:`parse_threshold` refuses anything else with one message naming what is
wrong; evaluating never raises (a metric that cannot be computed, e.g. a percentile of a run
with no response, counts as crossed, since nothing shows it holds).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from kuar_loadgen.result import LoadResult, decode_histogram

EXIT_THRESHOLDS = 4
"""kuar-loadgen's exit code when a ``--threshold`` was crossed (the result is still written)."""

LATENCY = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9, "max": 100.0,
           "mean": -1.0}
RATIOS = ("errorRate", "achievedRate")
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_FORM = re.compile(r"^\s*([A-Za-z0-9]+)\s*(<=|>=|<|>)\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z%]*)\s*$")
MAX_LENGTH = 64
"""Longest threshold text accepted."""


class ThresholdError(ValueError):
    """A threshold cannot be parsed; the message says why."""


@dataclass(frozen=True, slots=True)
class Threshold:
    """One parsed threshold: ``metric op value`` (latency in ms, ratios in %)."""

    text: str
    """As written."""
    metric: str
    """``p99``, ``errorRate``, ..."""
    op: str
    """``<``, ``<=``, ``>``, ``>=``."""
    value: float
    """In ms for latency, in percent for ratios."""

    @property
    def abortable(self) -> bool:
        """Whether a partial run can cross it for good (not ``achievedRate``: it can recover)."""
        return self.metric != "achievedRate"

    def observe(self, result: LoadResult) -> float | None:
        """The metric's value in ``result`` (``None`` when it cannot be computed)."""
        if self.metric == "errorRate":
            return 100.0 * result.errors / result.requests if result.requests else None
        if self.metric == "achievedRate":
            return (100.0 * result.achieved_rps / result.target_rps
                    if result.target_rps > 0 else None)
        if not result.responses:
            return None
        key = self.metric
        if key in result.latency_ms:
            return result.latency_ms[key]
        if not result.histogram:
            return None
        return float(decode_histogram(result.histogram).get_value_at_percentile(
            LATENCY[key])) / 1000.0

    def holds(self, result: LoadResult) -> tuple[bool, float | None]:
        """Whether it holds in ``result``, and the observed value."""
        seen = self.observe(result)
        if seen is None or not math.isfinite(seen):
            return False, seen
        return _OPS[self.op](seen, self.value), seen


def parse_threshold(text: str) -> Threshold:
    """Parse one threshold; :class:`ThresholdError` says what is wrong."""
    if len(text) > MAX_LENGTH:
        raise ThresholdError(f"longer than {MAX_LENGTH} characters")
    match = _FORM.match(text)
    if match is None:
        raise ThresholdError("expected METRIC OP VALUE, e.g. 'p99 < 50ms' or 'errorRate < 1%'")
    metric, op, number, unit = match.groups()
    value = float(number)
    if metric in LATENCY:
        if unit not in ("", *_UNITS):
            raise ThresholdError(f"{metric} takes a unit of us, ms or s, not {unit!r}")
        value *= _UNITS[unit or "ms"]
    elif metric in RATIOS:
        if unit not in ("", "%"):
            raise ThresholdError(f"{metric} is a percentage, not {unit!r}")
        if value > 100 and metric == "errorRate":
            raise ThresholdError(f"{metric} is at most 100%")
    else:
        known = ", ".join([*LATENCY, *RATIOS])
        raise ThresholdError(f"unknown metric {metric!r} (one of {known})")
    return Threshold(text=text.strip(), metric=metric, op=op, value=value)


def parse_thresholds(texts: Iterable[str]) -> list[Threshold]:
    """Parse several; the error names the first bad one by index (``thresholds[1]: ...``)."""
    out = []
    for i, text in enumerate(texts):
        try:
            out.append(parse_threshold(text))
        except ThresholdError as e:
            raise ThresholdError(f"thresholds[{i}]: {text!r}: {e}") from None
    return out


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of every threshold on one result."""

    crossed: tuple[tuple[Threshold, float | None], ...]
    """The thresholds that do not hold, with the observed values."""
    held: tuple[tuple[Threshold, float | None], ...]
    """The thresholds that hold."""

    @property
    def ok(self) -> bool:
        """No threshold crossed."""
        return not self.crossed

    def describe(self) -> str:
        """``p99 < 50ms crossed (observed 120.4)``, ... (at most 1 KiB)."""
        parts = [f"{t.text} crossed (observed {_fmt(v)})" for t, v in self.crossed] or [
            f"{t.text} held (observed {_fmt(v)})" for t, v in self.held]
        return "; ".join(parts)[:1024]


def evaluate(thresholds: Sequence[Threshold], result: LoadResult) -> Verdict:
    """Check every threshold on ``result``."""
    crossed: list[tuple[Threshold, float | None]] = []
    held: list[tuple[Threshold, float | None]] = []
    for t in thresholds:
        ok, seen = t.holds(result)
        (held if ok else crossed).append((t, seen))
    return Verdict(crossed=tuple(crossed), held=tuple(held))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
