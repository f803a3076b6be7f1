"""LoadTest reports: a terminal table, an HTML page with plots, and the run history's trend.

Plots: latency by percentile; requested and achieved rate over time; latency p50/p99 and
errors over time, with the LoadTest's thresholds as lines; the trend over the LoadTest's runs.

Place in the pipeline: ``kuar loadtest report NAME`` reads the LoadTest (v2), its results
ConfigMap and its LoadTestRun records (written by the controller) and calls
:func:`summary_rows`, :func:`trend_lines`, :func:`compare_rows` and :func:`write_html`. Pure
apart from writing the HTML file; plots are drawn with matplotlib (Agg backend, embedded as
PNG), so the page is one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kuar_loadgen.result import LoadResult, decode_histogram
from kuar_loadgen.stages import RateProfile, Stage, check_stages
from kuar_loadgen.thresholds import LATENCY, Threshold, ThresholdError, parse_threshold

PERCENTILES = (50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0)


def summary_rows(loadtest: Mapping[str, Any], result: LoadResult | None) -> list[tuple[str, str]]:
    """The facts of a run as (label, value) rows."""
    spec = loadtest.get("spec") or {}
    target, load = spec.get("target") or {}, spec.get("load") or {}
    status = loadtest.get("status") or {}
    results = status.get("results") or {}
    latency = results.get("latencyMs") or {}
    rows = [
        ("LoadTest", f"{loadtest['metadata'].get('namespace')}/{loadtest['metadata']['name']}"),
        ("target", f"{target.get('scheme', 'http')}://{target.get('service')} "
                   f"{target.get('paths')}"),
        ("phase", f"{status.get('phase', '-')} ({status.get('message', '')})"),
        ("requested rate", _requested_text(load)),
    ]
    if results:
        rows += [
            ("achieved rate", f"{results.get('achievedRps')} req/s"),
            ("requests", f"{results.get('requests')} ({results.get('successes')} ok, "
                         f"{results.get('errors')} errors)"),
            ("latency p50 / p90 / p99 / max",
             " / ".join(f"{latency.get(k, 0):.2f}" for k in ("p50", "p90", "p99", "max"))
             + " ms"),
            ("errors by code", ", ".join(f"{k}: {v}" for k, v in
                                         (results.get("errorsByCode") or {}).items()) or "none"),
        ]
    if result is not None:
        rows.append(("schedule lateness p99", f"{result.lateness_ms.get('p99', 0):.2f} ms"))
    return rows


def _requested_text(load: Mapping[str, Any]) -> str:
    stages = load.get("stages")
    if stages:
        steps = " -> ".join(f"{s.get('target')} req/s in {s.get('duration')}" for s in stages)
        return f"from {load.get('startRate') or 0} req/s: {steps}"
    return f"{load.get('requestsPerSecond')} req/s for {load.get('duration')}"


def percentile_curve(result: LoadResult) -> list[tuple[float, float]]:
    """(percentile, latency ms) points from the merged histogram."""
    if not result.histogram:
        return []
    hist = decode_histogram(result.histogram)
    return [(p, hist.get_value_at_percentile(p) / 1000.0) for p in PERCENTILES]


def rate_series(result: LoadResult, key: str = "responses") -> list[tuple[float, float]]:
    """(seconds since start, responses per second) from the result's timeline.

    ``key="sent"``: requests written per second (the achieved arrival rate), when recorded.
    """
    interval = float(result.timeline.get("interval_s") or 1)
    counts = result.timeline.get(key) or []
    # Responses to the last requests land just after the run's end: that partial interval is
    # not a rate, so the series stops at the configured duration.
    return [(i * interval, n / interval) for i, n in enumerate(counts)
            if (i + 1) * interval <= result.duration_s + 1e-9]


def requested_series(loadtest: Mapping[str, Any]) -> list[tuple[float, float]]:
    """(seconds since start, requests due in that second), as the LoadTest asked.

    From its stages' profile (linear ramps) or its constant rate.
    """
    load = (loadtest.get("spec") or {}).get("load") or {}
    try:
        if load.get("stages"):
            stages = [Stage(_seconds(str(s["duration"])), float(s["target"]))
                      for s in load["stages"]]
            check_stages(float(load.get("startRate") or 0), stages)
            profile = RateProfile(float(load.get("startRate") or 0), stages)
        else:
            profile = RateProfile.constant(float(load.get("requestsPerSecond") or 0),
                                           _seconds(str(load.get("duration") or "0s")))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return []  # a spec the run refused: nothing was requested
    return [(float(sec), float(n)) for sec, n in enumerate(profile.expected_per_second())]


def _seconds(text: str) -> float:
    from kuar_loadtest.desired import PlanError, parse_duration

    try:
        return parse_duration(text)
    except PlanError as exc:
        raise ValueError(str(exc)) from None


def latency_series(result: LoadResult) -> list[tuple[float, float, float]]:
    """(seconds since start, p50 ms, p99 ms) per interval, when the workers recorded them.

    Each value is the highest over the workers (an upper bound of the run's), for a window
    of about one second.
    """
    interval = float(result.timeline.get("interval_s") or 1)
    p50s, p99s = result.timeline.get("p50_ms") or [], result.timeline.get("p99_ms") or []
    return [(i * interval, float(a), float(b)) for i, (a, b) in enumerate(zip(p50s, p99s,
                                                                               strict=False))]


def error_series(result: LoadResult) -> list[tuple[float, float]]:
    """(seconds since start, errors in % of the requests that ended) per interval."""
    interval = float(result.timeline.get("interval_s") or 1)
    errors = result.timeline.get("errors") or []
    responses = result.timeline.get("responses") or []
    out = []
    for i, n in enumerate(errors):
        ended = (responses[i] if i < len(responses) else 0) + n  # failures are not responses
        out.append((i * interval, 100.0 * n / ended if ended else 0.0))
    return out


def threshold_lines(loadtest: Mapping[str, Any]) -> list[Threshold]:
    """The LoadTest's thresholds that parse (a bad one is the webhook's business)."""
    lines = []
    for text in (loadtest.get("spec") or {}).get("thresholds") or []:
        try:
            lines.append(parse_threshold(str(text)))
        except ThresholdError:
            continue
    return lines


def _over_time(result: LoadResult, thresholds: list[Threshold]) -> tuple[str, str]:
    def latency(ax: Any) -> None:
        series = latency_series(result)
        if series:
            ax.plot([t for t, _, _ in series], [a for _, a, _ in series], label="p50")
            ax.plot([t for t, _, _ in series], [b for _, _, b in series], label="p99")

    def errors(ax: Any) -> None:
        series = error_series(result)
        if series:
            ax.step([t for t, _ in series], [e for _, e in series], where="post",
                    label="errors")

    return (_timeline_plot("Latency over time (per second, highest over workers)",
                           "latency from due time (ms)", latency,
                           [t for t in thresholds if t.metric in LATENCY]),
            _timeline_plot("Errors over time", "errors (% of requests ended)", errors,
                           [t for t in thresholds if t.metric == "errorRate"]))


def _timeline_plot(title: str, ylabel: str, draw: Any, thresholds: list[Threshold]) -> str:
    """One plot over time: ``draw(ax)`` draws the series; thresholds become red lines."""
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    draw(ax)
    for t in thresholds:
        ax.axhline(t.value, color="red", linestyle=":", label=f"threshold {t.text}")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(True, alpha=0.3)
    png = _png(fig)
    plt.close(fig)
    return png


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _plots(result: LoadResult, requested: list[tuple[float, float]]) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    curve = percentile_curve(result)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if curve:
        xs = [100.0 / (100.0 - p) if p < 100 else 100.0 / 0.001 for p, _ in curve]
        ax.plot(xs, [v for _, v in curve], marker="o")
        ax.set_xscale("log")
        ax.set_xticks(xs, [f"p{p:g}" if p < 100 else "max" for p, _ in curve])
    ax.set_ylabel("latency from due time (ms)")
    ax.set_title("Latency by percentile")
    ax.grid(True, alpha=0.3)
    latency_png = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for key, label in (("sent", "achieved (sent)"), ("responses", "responses")):
        series = rate_series(result, key)
        if series:
            ax.step([t for t, _ in series], [r for _, r in series], where="post", label=label)
    if requested:
        ax.step([t for t, _ in requested], [r for _, r in requested], where="post",
                color="grey", linestyle="--", label="requested")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("requests per second")
    ax.set_title("Requested and achieved rate over time")
    ax.legend()
    ax.grid(True, alpha=0.3)
    rate_png = _png(fig)
    plt.close(fig)
    return latency_png, rate_png


def write_html(
    path: Path, loadtest: Mapping[str, Any], result: LoadResult | None,
    runs: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Write a self-contained HTML report: table, plots, and the trend over ``runs``.

    ``runs`` are LoadTestRun records, oldest first; the two plots need a ``result``.
    """
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in summary_rows(loadtest, result)
    )
    plots = ""
    if result is not None:
        latency_png, rate_png = _plots(result, requested_series(loadtest))
        over_time_png, errors_png = _over_time(result, threshold_lines(loadtest))
        plots = (f'<h2>Latency</h2><img alt="latency by percentile" '
                 f'src="data:image/png;base64,{latency_png}">'
                 f'<h2>Rate</h2><img alt="achieved rate over time" '
                 f'src="data:image/png;base64,{rate_png}">'
                 f'<h2>Latency over time</h2><img alt="latency p50 and p99 per second" '
                 f'src="data:image/png;base64,{over_time_png}">'
                 f'<h2>Errors over time</h2><img alt="errors per second" '
                 f'src="data:image/png;base64,{errors_png}">')
    name = html.escape(str(loadtest["metadata"]["name"]))
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>LoadTest {name}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "th{text-align:left;padding-right:1em}</style></head><body>"
        f"<h1>LoadTest {name}</h1><table>{rows}</table>{plots}{history_html(runs or [])}"
        "</body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path


# --- run history: trend and side-by-side comparison (issue 16) ---

TREND_METRICS = (("p50", "p50 ms"), ("p99", "p99 ms"), ("achievedRps", "achieved req/s"))
"""The figures of the trend, as (key, label)."""
_SPARKS = "▁▂▃▄▅▆▇█"


def run_figures(run: Mapping[str, Any]) -> dict[str, float | None]:
    """p50, p99 (ms) and achieved rate of a LoadTestRun record (``None`` when not measured)."""
    results = (run.get("status") or {}).get("results") or {}
    latency = results.get("latencyMs") or {}
    return {"p50": latency.get("p50"), "p99": latency.get("p99"),
            "achievedRps": results.get("achievedRps")}


def sparkline(values: list[float | None]) -> str:
    """One character per value, scaled between the smallest and largest (`` `` for none)."""
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    low, high = min(known), max(known)
    span = high - low or 1.0
    return "".join(" " if v is None else _SPARKS[round((v - low) / span * (len(_SPARKS) - 1))]
                   for v in values)


def history_rows(runs: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """One row per run, oldest first: name, trigger, phase/reason, start, p50, p99, rate."""
    rows = []
    for run in runs:
        status = run.get("status") or {}
        figures = run_figures(run)
        phase = status.get("phase") or "-"
        if status.get("reason") and status.get("reason") not in ("Completed", "Running"):
            phase = f"{phase} ({status['reason']})"
        rows.append((str(run["metadata"]["name"]), str((run.get("spec") or {}).get("trigger")),
                     phase, str(status.get("startTime") or "-"),
                     *(f"{v:g}" if v is not None else "-" for v in figures.values())))
    return rows


def trend_lines(runs: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(label, sparkline over the runs, first -> last) per trend figure."""
    lines = []
    for key, label in TREND_METRICS:
        values = [run_figures(r)[key] for r in runs]
        known = [v for v in values if v is not None]
        span = f"{known[0]:g} -> {known[-1]:g}" if known else "-"
        lines.append((label, sparkline(values), span))
    return lines


def compare_rows(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Two runs side by side: (figure, left, right, change %)."""
    rows: list[tuple[str, ...]] = [
        ("run", str(left["metadata"]["name"]), str(right["metadata"]["name"]), ""),
        ("phase", str((left.get("status") or {}).get("phase")),
         str((right.get("status") or {}).get("phase")), ""),
        ("started", str((left.get("status") or {}).get("startTime")),
         str((right.get("status") or {}).get("startTime")), ""),
    ]
    a, b = run_figures(left), run_figures(right)
    for key, label in TREND_METRICS:
        before, after = a[key], b[key]
        change = (f"{(after - before) / before * 100:+.1f} %"
                  if before and after is not None else "")
        rows.append((label, "-" if before is None else f"{before:g}",
                     "-" if after is None else f"{after:g}", change))
    return rows


def trend_png(runs: Sequence[Mapping[str, Any]]) -> str:
    """The trend plot (p50 and p99 on the left axis, achieved rate on the right), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = [str(r["metadata"]["name"]) for r in runs]
    xs = list(range(len(runs)))
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for key, label in TREND_METRICS[:2]:
        ys = [run_figures(r)[key] for r in runs]
        ax.plot(xs, [float("nan") if y is None else y for y in ys], marker="o", label=label)
    ax.set_ylabel("latency (ms)")
    rate_ax = ax.twinx()
    rate = [run_figures(r)["achievedRps"] for r in runs]
    rate_ax.plot(xs, [float("nan") if y is None else y for y in rate], marker="s",
                 color="grey", linestyle="--", label="achieved req/s")
    rate_ax.set_ylabel("achieved req/s")
    ax.set_xticks(xs, names, rotation=30, ha="right", fontsize=7)
    ax.set_title("Runs over time")
    ax.grid(True, alpha=0.3)
    handles = ax.get_legend_handles_labels()
    rate_handles = rate_ax.get_legend_handles_labels()
    ax.legend(handles[0] + rate_handles[0], handles[1] + rate_handles[1], fontsize=8)
    png = _png(fig)
    plt.close(fig)
    return png


def history_html(runs: Sequence[Mapping[str, Any]]) -> str:
    """The HTML section of the run history: the trend plot and a table of runs."""
    if not runs:
        return ""
    head = "".join(f"<th>{h}</th>" for h in
                   ("run", "trigger", "phase", "started", "p50 ms", "p99 ms", "req/s"))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in history_rows(runs))
    return (f'<h2>History</h2><img alt="p50, p99 and achieved rate over runs" '
            f'src="data:image/png;base64,{trend_png(runs)}">'
            f"<table><tr>{head}</tr>{body}</table>")
