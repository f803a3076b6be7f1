"""The outcome of a run: a versioned JSON document, mergeable across processes and pods.

Place in the pipeline: each worker process builds a :class:`LoadResult`
(:mod:`kuar_loadgen.recorder`); the runner merges its processes' results into the pod's; the pod
prints it (``--json``) and writes :func:`compact` of it to its termination message; the
LoadTest controller reads the pods' messages and merges them again with :func:`merge_results`.
This module is pure (no I/O), so the controller may import it.

Schema, version 1 (all keys always present)::

    version        1
    requests       requests due in the run (each ends as a response or an error)
    responses      requests answered with an HTTP response (any status)
    errors         sum of error_kinds: transport failures plus 4xx/5xx responses
    target_rps     requests/s asked of this result's shards (sum over shards)
    achieved_rps   responses / max(duration_s, elapsed_s), summed over shards
    duration_s     the configured run length
    elapsed_s      from t0 to the last completion
    started_at     t0 as Unix seconds (earliest over shards)
    latency_ms     p50, p90, p99, p999, max, mean: latency from each request's due time to
                   its complete response (so waiting for the server or for a connection counts)
    lateness_ms    p50, p99, max: how late requests were written compared with their due time
                   (scheduler delay plus waiting for a connection); merged as a maximum
    status_codes   {"200": n, ...} over responses
    error_kinds    {"timeout"|"connect"|"tls"|"reset"|"protocol"|"dropped"|"http_4xx"|
                   "http_5xx": n}; "dropped": not sent, no connection free within half
                   the timeout (the generator at capacity; absent in older results)
    timeline       {"interval_s": k, "responses": [...], "errors": [...], "sent": [...]}:
                   completions, errors and requests written per interval since t0 (k is a
                   power of two; compact() may widen it; "sent" is absent in older results)
    histogram      HdrHistogram V2, compressed, base64 ("HISTF..."), values in microseconds
    processes      worker processes that contributed
    shards         pod results that contributed

Guarantees: :func:`merge_results` is associative and commutative up to timeline alignment
(timelines are aligned by ``started_at`` rounded to the interval); percentiles of a merge are
recomputed from the merged histogram, never averaged. :func:`compact` keeps the counts and the
percentiles exact and only loses histogram precision and timeline resolution, in that order.

Errors: :meth:`LoadResult.from_dict` raises ``ValueError`` for an unknown ``version`` or
missing keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hdrh.histogram import HdrHistogram

VERSION = 1

# kuar-loadgen's exit codes (docs/loadgen.md). Kept here, in the pure module, because the
# LoadTest controller reads them together with the result (kuar_loadtest.status).
EXIT_OK = 0
"""The run completed and got answers (HTTP responses of any status; the result counts them)."""
EXIT_NO_ANSWERS = 1
"""The run completed but no request got an answer (connect, TLS, reset, timeout or dropped
errors only); the result is still printed and written."""
EXIT_BAD_INPUT = 2
"""Bad input: flags, ``KUAR_LOADGEN_SPEC``, or a named file (``--ca-file``, ``--result-file``);
nothing was sent."""
EXIT_CANNOT_RUN = 3
"""The run could not start or finish: a worker process failed, the metrics port was taken,
or an internal error."""

TERMINATION_MESSAGE_LIMIT = 4096
"""Kubernetes truncates a container's termination message to 4096 bytes."""

HIGHEST_US = 3_600_000_000
"""Largest latency the histograms track: one hour, in microseconds."""
DIGITS = 3
"""Significant digits of a fresh histogram (0.1 % value resolution)."""


def new_histogram(digits: int = DIGITS) -> Any:
    """An empty latency histogram: 1 us to 1 h with ``digits`` significant digits."""
    return HdrHistogram(1, HIGHEST_US, digits)


def decode_histogram(encoded: str) -> Any:
    """Decode the ``histogram`` field (an empty string decodes to an empty histogram)."""
    return HdrHistogram.decode(encoded) if encoded else new_histogram()


def percentiles_ms(hist: Any) -> dict[str, float]:
    """The ``latency_ms`` summary of a histogram of microseconds."""
    if hist.get_total_count() == 0:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0, "mean": 0.0}
    pct = hist.get_percentile_to_value_dict([50.0, 90.0, 99.0, 99.9])
    return {
        "p50": pct[50.0] / 1000,
        "p90": pct[90.0] / 1000,
        "p99": pct[99.0] / 1000,
        "p999": pct[99.9] / 1000,
        "max": hist.get_max_value() / 1000,
        "mean": round(hist.get_mean_value() / 1000, 3),
    }


@dataclass(frozen=True, kw_only=True)
class LoadResult:
    """One result document (see the module docstring for the meaning of each field)."""

    requests: int
    responses: int
    errors: int
    target_rps: float
    achieved_rps: float
    duration_s: float
    elapsed_s: float
    started_at: float
    latency_ms: dict[str, float]
    lateness_ms: dict[str, float]
    status_codes: dict[str, int] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)
    timeline: dict[str, Any] = field(
        default_factory=lambda: {"interval_s": 1, "responses": [], "errors": []})
    histogram: str = ""
    processes: int = 1
    shards: int = 1
    first_sent_at: float = 0.0
    """Wall-clock start of the earliest worker: ``t0`` plus how late its first request was
    written (0: nothing sent, or an older result)."""
    last_first_sent_at: float = 0.0
    """The same for the latest worker: ``last_first_sent_at - first_sent_at`` is the start
    skew between workers that share one ``t0``."""
    aborted: str = ""
    """Why the run stopped before its end (a crossed threshold with ``abort_on_fail``), or
    empty; written only when set, so older readers are unaffected."""
    version: int = VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready document."""
        return {
            "version": self.version,
            "requests": self.requests,
            "responses": self.responses,
            "errors": self.errors,
            "target_rps": round(self.target_rps, 3),
            "achieved_rps": round(self.achieved_rps, 3),
            "duration_s": round(self.duration_s, 3),
            "elapsed_s": round(self.elapsed_s, 3),
            "started_at": round(self.started_at, 3),
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()},
            "lateness_ms": {k: round(v, 3) for k, v in self.lateness_ms.items()},
            "status_codes": dict(sorted(self.status_codes.items())),
            "error_kinds": dict(sorted(self.error_kinds.items())),
            "timeline": self.timeline,
            "histogram": self.histogram,
            "processes": self.processes,
            "shards": self.shards,
            **({"aborted": self.aborted} if self.aborted else {}),
            **({"first_sent_at": round(self.first_sent_at, 4),
                "last_first_sent_at": round(self.last_first_sent_at, 4)}
               if self.first_sent_at else {}),
        }

    def to_json(self) -> str:
        """One line of compact JSON."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoadResult:
        """Read a document back (e.g. a pod's termination message)."""
        if data.get("version") != VERSION:
            raise ValueError(f"unsupported result version {data.get('version')!r}")
        try:
            return cls(
                requests=int(data["requests"]),
                responses=int(data["responses"]),
                errors=int(data["errors"]),
                target_rps=float(data["target_rps"]),
                achieved_rps=float(data["achieved_rps"]),
                duration_s=float(data["duration_s"]),
                elapsed_s=float(data["elapsed_s"]),
                started_at=float(data["started_at"]),
                latency_ms={k: float(v) for k, v in data["latency_ms"].items()},
                lateness_ms={k: float(v) for k, v in data["lateness_ms"].items()},
                status_codes={str(k): int(v) for k, v in data["status_codes"].items()},
                error_kinds={str(k): int(v) for k, v in data["error_kinds"].items()},
                timeline=dict(data["timeline"]),
                histogram=str(data["histogram"]),
                processes=int(data["processes"]),
                shards=int(data["shards"]),
                aborted=str(data.get("aborted") or "")[:512],
                first_sent_at=float(data.get("first_sent_at") or 0.0),
                last_first_sent_at=float(data.get("last_first_sent_at") or 0.0),
            )
        except KeyError as e:
            raise ValueError(f"result misses key {e}") from e

    @classmethod
    def from_json(cls, text: str) -> LoadResult:
        """Parse :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    @property
    def start_skew_ms(self) -> float | None:
        """Spread of the workers' actual starts in ms (``None`` when unknown)."""
        if not self.first_sent_at:
            return None
        return (self.last_first_sent_at - self.first_sent_at) * 1000.0

    def size(self) -> int:
        """Bytes of :meth:`to_json` in UTF-8."""
        return len(self.to_json().encode())


def merge_results(results: Sequence[LoadResult], *, as_shards: bool = True) -> LoadResult:
    """Merge results of processes or pods that ran at the same time into one.

    ``as_shards=False`` merges processes of one pod: ``shards`` is then kept, not summed.
    """
    if not results:
        raise ValueError("merge_results needs at least one result")
    if len(results) == 1:
        return results[0]
    hists = [decode_histogram(r.histogram) for r in results]
    merged = new_histogram(min(h.significant_figures for h in hists))
    for h in hists:
        merged.add(h)
    started = min(r.started_at for r in results)
    return LoadResult(
        requests=sum(r.requests for r in results),
        responses=sum(r.responses for r in results),
        errors=sum(r.errors for r in results),
        target_rps=sum(r.target_rps for r in results),
        achieved_rps=sum(r.achieved_rps for r in results),
        duration_s=max(r.duration_s for r in results),
        elapsed_s=max(r.elapsed_s + r.started_at - started for r in results),
        started_at=started,
        latency_ms=percentiles_ms(merged),
        lateness_ms=_max_dict([r.lateness_ms for r in results]),
        status_codes=_sum_dict([r.status_codes for r in results]),
        error_kinds=_sum_dict([r.error_kinds for r in results]),
        timeline=_merge_timelines(results, started),
        histogram=merged.encode().decode() if merged.get_total_count() else "",
        processes=sum(r.processes for r in results),
        shards=sum(r.shards for r in results) if as_shards else results[0].shards,
        aborted=next((r.aborted for r in results if r.aborted), ""),
        first_sent_at=min((r.first_sent_at for r in results if r.first_sent_at), default=0.0),
        last_first_sent_at=max((r.last_first_sent_at for r in results), default=0.0),
    )


def compact(result: LoadResult, limit: int = TERMINATION_MESSAGE_LIMIT) -> LoadResult:
    """The most detailed form of ``result`` whose JSON fits in ``limit`` bytes.

    Order of sacrifice: histogram 3 -> 2 significant digits (1 % resolution), then the
    timeline's interval doubles, then the histogram goes to 1 digit, then the timeline and
    finally the histogram are dropped (counts and ``latency_ms`` stay exact throughout).
    """
    if result.size() <= limit:
        return result
    current = result
    hist = decode_histogram(result.histogram) if result.histogram else None
    if hist is not None and hist.significant_figures > 2:
        current = replace(current, histogram=_reprecise(hist, 2))
    while current.size() > limit and len(current.timeline.get("responses", [])) > 1:
        current = replace(current, timeline=coarsen_timeline(current.timeline))
    if current.size() > limit and hist is not None:
        current = replace(current, histogram=_reprecise(hist, 1))
    if current.size() > limit:
        current = replace(current, timeline={"interval_s": 0, "responses": [], "errors": []})
    if current.size() > limit:
        current = replace(current, histogram="")
    if current.size() > limit:
        top = sorted(current.status_codes.items(), key=lambda kv: -kv[1])[:8]
        current = replace(current, status_codes=dict(top))
    return current


TIMELINE_KEYS = ("responses", "errors", "sent")
"""The per-interval counts of a timeline (summed when merged or coarsened)."""
TIMELINE_MAX_KEYS = ("p50_ms", "p99_ms")
"""Per-interval latencies of a timeline: merged and coarsened by their maximum (an upper
bound of the merged run's value in that interval)."""


def coarsen_timeline(timeline: Mapping[str, Any], factor: int = 2) -> dict[str, Any]:
    """Sum neighbouring intervals: the interval grows by ``factor``."""
    out: dict[str, Any] = {"interval_s": int(timeline["interval_s"]) * factor}
    for key in TIMELINE_KEYS:
        if key not in timeline and key == "sent":
            continue
        series = list(timeline.get(key, []))
        out[key] = [sum(series[i:i + factor]) for i in range(0, len(series), factor)]
    for key in TIMELINE_MAX_KEYS:
        if key in timeline:
            values = list(timeline[key])
            out[key] = [max(values[i:i + factor]) for i in range(0, len(values), factor)]
    return out


def _merge_timelines(results: Sequence[LoadResult], started: float) -> dict[str, Any]:
    intervals = [int(r.timeline.get("interval_s", 1)) for r in results]
    if any(i <= 0 for i in intervals):
        return {"interval_s": 0, "responses": [], "errors": []}
    interval = max(intervals)
    out: dict[str, Any] = {"interval_s": interval, "responses": [], "errors": []}
    for r in results:
        tl: Mapping[str, Any] = r.timeline
        while int(tl["interval_s"]) < interval:
            tl = coarsen_timeline(tl)
        shift = round((r.started_at - started) / interval)
        for key in TIMELINE_MAX_KEYS:
            if key not in tl:
                continue
            peaks: list[float] = out.setdefault(key, [])
            for i, v in enumerate(tl[key]):
                j = i + shift
                if j >= 0:
                    peaks.extend([0.0] * (j + 1 - len(peaks)))
                    peaks[j] = max(peaks[j], float(v))
        for key in TIMELINE_KEYS:
            if key not in tl:
                continue
            series: list[int] = out.setdefault(key, [])
            for i, n in enumerate(tl.get(key, [])):
                j = i + shift
                series.extend([0] * (j + 1 - len(series)))
                series[j] += int(n)
    n = max(len(out[key]) for key in TIMELINE_KEYS if key in out)
    for key in TIMELINE_KEYS:
        if key in out:
            out[key].extend([0] * (n - len(out[key])))
    return out


def _reprecise(hist: Any, digits: int) -> str:
    if hist.get_total_count() == 0:
        return ""
    out = new_histogram(digits)
    for item in hist.get_recorded_iterator():
        out.record_value(item.value_iterated_to, item.count_at_value_iterated_to)
    return str(out.encode().decode())


def _sum_dict(items: Sequence[Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in items:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def _max_dict(items: Sequence[Mapping[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for d in items:
        for k, v in d.items():
            out[k] = max(out.get(k, 0.0), v)
    return out
