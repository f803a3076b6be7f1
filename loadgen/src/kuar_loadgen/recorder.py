"""Counting one process's outcomes as they happen: histograms, status codes, errors, timeline.

Place in the pipeline: the HTTP client (:mod:`kuar_loadgen._client`) calls
:meth:`Recorder.response` or :meth:`Recorder.error` once per request; the worker turns the
recorder into a :class:`~kuar_loadgen.result.LoadResult` at the end, and the progress display
reads its counters while the run goes on. Pure (the clock is passed in), so it is unit-tested
without a server.

Guarantees: every request is recorded exactly once, as a response or as an error; latency is
``now - due`` (never from the send time), so time spent waiting for a stalled server or for a
free connection is in the percentiles.
"""

from __future__ import annotations

from typing import Any

from kuar_loadgen.result import HIGHEST_US, LoadResult, new_histogram, percentiles_ms

ERROR_KINDS = ("timeout", "connect", "tls", "reset", "protocol", "dropped", "http_4xx",
               "http_5xx")
"""Kinds of failed request: no answer in time, no connection, TLS handshake failure, connection
lost mid-request, unparsable response, not sent because no connection was free within half the
timeout (the generator at capacity), or an answered request with an error status."""


_SUB_MASK: int = int(new_histogram().sub_bucket_count) - 1
"""Values below ``_SUB_MASK + 1`` have a bucket of their own (2047 at 3 digits)."""
_SUB_BITS = _SUB_MASK.bit_length()


def bucket_of(value: int) -> int:
    """The lowest value of ``value``'s HdrHistogram bucket: recording either is the same.

    At :data:`~kuar_loadgen.result.DIGITS` significant digits. Counting these keys in a dict
    and recording each key once with its count (as :func:`histogram_of` does) costs about a
    fifth of one ``record_value`` per value, on a path that runs twice per request.
    """
    shift = (value | _SUB_MASK).bit_length() - _SUB_BITS
    return value >> shift << shift


def histogram_of(counts: dict[int, int]) -> Any:
    """The HdrHistogram of values counted by :func:`bucket_of`."""
    hist = new_histogram()
    for key, n in counts.items():
        hist.record_value(key, n)
    return hist


class Recorder:
    """Mutable counters of one process (not thread-safe: one event loop owns it)."""

    __slots__ = (
        "_lat",
        "_late",
        "error_kinds",
        "errors",
        "first_late",
        "last_completion",
        "recent",
        "responses",
        "sent",
        "status_codes",
        "t0",
        "timeline_errors",
        "timeline_p50",
        "timeline_p99",
        "timeline_responses",
        "timeline_sent",
    )

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        """Monotonic time of the run's start (request 0's due time)."""
        self._lat: dict[int, int] = {}
        """Latencies (us) by HDR bucket (:func:`bucket_of`); a histogram at the end."""
        self._late: dict[int, int] = {}
        """Lateness (us) by HDR bucket."""
        self.sent = 0
        self.responses = 0
        self.errors = 0
        self.status_codes: dict[int, int] = {}
        self.error_kinds: dict[str, int] = {}
        self.timeline_responses: list[int] = []
        self.timeline_errors: list[int] = []
        self.timeline_sent: list[int] = []
        self.first_late: float | None = None
        self.timeline_p50: list[float] = []
        self.timeline_p99: list[float] = []
        self.last_completion = t0
        self.recent: list[int] = []
        """Latencies (us) since the last :meth:`take_recent`: a cheap live view, because a
        percentile query of the HDR histogram scans ~20,000 buckets in Python (~30 ms)."""

    def restart(self, t0: float) -> None:
        """Set the run's start (known only once the worker is ready); nothing is recorded yet."""
        self.t0 = t0
        self.last_completion = t0

    def sent_late(self, due: float, sent: float) -> None:
        """A request was written; record how late compared with its due time."""
        self.sent += 1
        late = int((sent - due) * 1e6)
        if 0 <= late <= HIGHEST_US:  # as HdrHistogram.record_value: others are not counted
            shift = (late | _SUB_MASK).bit_length() - _SUB_BITS  # bucket_of(late), inlined
            key = late >> shift << shift
            counts = self._late
            counts[key] = counts.get(key, 0) + 1
        if self.first_late is None:
            self.first_late = sent - due
        sec = int(sent - self.t0)
        if sec >= len(self.timeline_responses):
            self._grow(sec)
        self.timeline_sent[sec] += 1

    def response(self, due: float, now: float, status: int) -> None:
        """A complete response arrived at ``now`` for the request due at ``due``."""
        self.responses += 1
        lat = int((now - due) * 1e6)
        if 0 <= lat <= HIGHEST_US:
            shift = (lat | _SUB_MASK).bit_length() - _SUB_BITS  # bucket_of(lat), inlined
            key = lat >> shift << shift
            counts = self._lat
            counts[key] = counts.get(key, 0) + 1
        self.recent.append(lat)
        codes = self.status_codes
        codes[status] = codes.get(status, 0) + 1
        sec = int(now - self.t0)
        tl = self.timeline_responses
        if sec >= len(tl):
            self._grow(sec)
        tl[sec] += 1
        if status >= 400:
            self._error_count("http_5xx" if status >= 500 else "http_4xx", sec)
        self.last_completion = now

    def error(self, now: float, kind: str) -> None:
        """The request failed without a response (``kind`` is one of :data:`ERROR_KINDS`)."""
        sec = int(now - self.t0)
        if sec >= len(self.timeline_responses):
            self._grow(sec)
        self._error_count(kind, sec)
        self.last_completion = max(self.last_completion, now)

    def _error_count(self, kind: str, sec: int) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
        self.timeline_errors[sec] += 1

    def _grow(self, sec: int) -> None:
        extra = [0] * (sec + 1 - len(self.timeline_responses))
        self.timeline_responses.extend(extra)
        self.timeline_errors.extend(extra)
        self.timeline_sent.extend(extra)

    @property
    def failed(self) -> int:
        """Requests that ended without a response."""
        return self.errors - self.error_kinds.get("http_4xx", 0) - self.error_kinds.get(
            "http_5xx", 0)

    def take_recent(self, now: float | None = None) -> tuple[int, int]:
        """Median and p99 latency (us) of the responses since the last call; then forget them.

        With ``now`` (monotonic) they are also kept as the latency of the second that just
        ended (the timeline's ``p50_ms``/``p99_ms``; the window is the ~1 s since the last
        call, not aligned to whole seconds).
        """
        recent, self.recent = self.recent, []
        if not recent:
            return 0, 0
        recent.sort()
        n = len(recent)
        # Nearest rank: the smallest value with at least p * n values at or below it.
        p50, p99 = recent[(n + 1) // 2 - 1], recent[-(-99 * n // 100) - 1]
        if now is not None:
            sec = max(0, int(now - self.t0) - 1)
            for series, value in ((self.timeline_p50, p50), (self.timeline_p99, p99)):
                series.extend([0.0] * (sec + 1 - len(series)))
                series[sec] = max(series[sec], value / 1000.0)
        return p50, p99

    def result(self, *, requests: int, target_rps: float, duration: float, started_at: float,
               end: float) -> LoadResult:
        """The final result; ``end`` is the monotonic time the run finished."""
        elapsed = max(self.last_completion, min(end, self.t0 + duration)) - self.t0
        late = histogram_of(self._late)
        lateness = {"p50": 0.0, "p99": 0.0, "max": 0.0}
        if late.get_total_count():
            lateness = {"p50": late.get_value_at_percentile(50) / 1000,
                        "p99": late.get_value_at_percentile(99) / 1000,
                        "max": late.get_max_value() / 1000}
        hist = histogram_of(self._lat)
        return LoadResult(
            requests=requests,
            responses=self.responses,
            errors=self.errors,
            target_rps=target_rps,
            achieved_rps=self.responses / max(duration, elapsed),
            duration_s=duration,
            elapsed_s=elapsed,
            started_at=started_at,
            latency_ms=percentiles_ms(hist),
            lateness_ms=lateness,
            status_codes={str(k): v for k, v in self.status_codes.items()},
            error_kinds=dict(self.error_kinds),
            timeline={"interval_s": 1, "responses": list(self.timeline_responses),
                      "errors": list(self.timeline_errors),
                      "sent": list(self.timeline_sent),
                      **({"p50_ms": [round(v, 3) for v in self.timeline_p50],
                          "p99_ms": [round(v, 3) for v in self.timeline_p99]}
                         if self.timeline_p99 else {})},
            histogram=hist.encode().decode() if hist.get_total_count() else "",
            processes=1,
            shards=1,
            first_sent_at=(started_at + self.first_late) if self.first_late is not None else 0.0,
            last_first_sent_at=(started_at + self.first_late)
            if self.first_late is not None else 0.0,
        )
