"""Running each load tool pinned to one core against a URL, and reading its throughput."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CONNECTIONS = 64
"""Connections (or users) of every tool in the throughput runs."""

INSTALL = {
    "nginx": "apt-get update && apt-get install -y nginx",
    "wrk": "apt-get update && apt-get install -y wrk",
    "hey": "apt-get update && apt-get install -y hey",
    "locust": "pip install locust  (any venv; pass --locust PATH or put it on PATH)",
}


@dataclass
class Measure:
    tool: str
    rps: float | None = None
    """Requests/s achieved (wall clock)."""
    cpu_rps: float | None = None
    """Requests per CPU-second of the tool's process (start-up included): what one core
    would do undisturbed; robust to other work on a shared machine."""
    note: str = ""
    steps: list[tuple[float, float]] = field(default_factory=list)
    errors: int | None = None
    """Failed requests (connect/read/write errors, timeouts, non-2xx answers)."""


def pinned(core: int | None, cmd: list[str]) -> list[str]:
    return cmd if core is None else ["taskset", "-c", str(core), *cmd]


def timed(cmd: list[str], **kw: Any) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run a command to the end; also return the CPU seconds (user + system) it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, **kw)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out, cpu


def _per_cpu(requests: float, cpu: float) -> float | None:
    return requests / cpu if cpu > 0 else None


def run_kuar(url: str, *, rps: float, seconds: int, core: int | None,
             connections: int = CONNECTIONS, timeout: float = 1.0,
             loop: str = "auto") -> dict[str, Any]:
    """One kuar-loadgen run in one process; its JSON result (plus ``cpu_s``, its CPU time)."""
    cmd = [sys.executable, "-m", "kuar_loadgen", "--url", url, "--rps", str(rps),
           "--duration", str(seconds), "--processes", "1", "--connections", str(connections),
           "--timeout", str(timeout), "--loop", loop, "--json", "--no-progress"]
    out, cpu = timed(pinned(core, cmd), timeout=seconds + timeout + 60)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["cpu_s"] = cpu
    return result


def window_rps(result: dict[str, Any], seconds: int) -> float:
    """Responses completed inside the run's window, per second (the drain is left out)."""
    return float(sum(result["timeline"]["responses"][:seconds]) / seconds)


def kuar_search(url: str, *, seconds: int, core: int | None, start: float = 10_000,
                factor: float = 1.5, max_runs: int = 12, refine: int = 3) -> Measure:
    """Find kuar-loadgen's open-loop maximum: rates rising by ``factor`` until one falls 3 %
    short twice, then ``refine`` bisection steps between the last rate met and the first
    missed. ``rps`` is the highest rate met (the rate to measure at); the steps are kept."""
    m = kuar_max(url, seconds=seconds, core=core, start=start, factor=factor,
                 max_runs=max_runs)
    met = [rate for rate, got in m.steps if got >= 0.97 * rate]
    missed = [rate for rate, got in m.steps if got < 0.97 * rate and rate > max(met, default=0)]
    low, high = max(met, default=start / factor), min(missed, default=None)
    for _ in range(refine if high is not None else 0):
        assert high is not None
        rate = (low + high) / 2
        got = window_rps(run_kuar(url, rps=rate, seconds=seconds, core=core), seconds)
        m.steps.append((rate, got))
        low, high = (rate, high) if got >= 0.97 * rate else (low, rate)
    m.rps = low
    return m


def kuar_at(url: str, *, rate: float, seconds: int, core: int | None) -> Measure:
    """One kuar-loadgen run at ``rate`` (open loop): achieved requests/s inside the window."""
    result = run_kuar(url, rps=rate, seconds=seconds, core=core)
    return Measure("kuar-loadgen", rps=window_rps(result, seconds),
                   cpu_rps=_per_cpu(result["responses"], result["cpu_s"]),
                   errors=int(result["errors"]),
                   note=f"open loop at {rate:,.0f}/s (searched), 1 process, "
                        f"{CONNECTIONS} connections")


def kuar_max(url: str, *, seconds: int, core: int | None, start: float = 10_000,
             factor: float = 1.5, loop: str = "auto", max_runs: int = 12) -> Measure:
    """Open-loop rates rising by ``factor`` until the achieved rate falls 3 % short twice at
    the same rate (once may be a neighbour's burst on a shared machine); the best achieved
    rate is the maximum (an open-loop tool has no 'as fast as possible' mode)."""
    m = Measure("kuar-loadgen", note="open loop, 1 process")
    rate, misses = start, 0
    while len(m.steps) < max_runs:
        result = run_kuar(url, rps=rate, seconds=seconds, core=core, loop=loop)
        achieved = window_rps(result, seconds)
        m.steps.append((rate, achieved))
        if achieved > (m.rps or 0.0):
            m.rps = achieved
            m.cpu_rps = _per_cpu(result["responses"], result["cpu_s"])
        if achieved < 0.97 * rate:
            misses += 1
            if misses == 2:
                break
            continue
        rate, misses = rate * factor, 0
    return m


def wrk_max(url: str, *, seconds: int, core: int | None) -> Measure:
    binary = shutil.which("wrk")
    if binary is None:
        return Measure("wrk", note="missing: " + INSTALL["wrk"])
    out, cpu = timed(pinned(core, [binary, "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", url]),
                     timeout=seconds + 30)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    total = re.search(r"(\d+) requests in", out.stdout)
    sockets = re.search(r"Socket errors:(.*)", out.stdout)
    errors = sum(int(n) for n in re.findall(r"\d+", sockets.group(1))) if sockets else 0
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    return Measure("wrk", rps=float(match.group(1)) if match else None,
                   cpu_rps=_per_cpu(float(total.group(1)), cpu) if total else None,
                   errors=errors + (int(bad.group(1)) if bad else 0),
                   note=f"closed loop, 1 thread, {CONNECTIONS} connections")


def hey_max(url: str, *, seconds: int, core: int | None) -> Measure:
    binary = shutil.which("hey")
    if binary is None:
        return Measure("hey", note="missing: " + INSTALL["hey"])
    out, cpu = timed(pinned(core, [binary, "-z", f"{seconds}s", "-c", str(CONNECTIONS), url]),
                     timeout=seconds + 30, env={**os.environ, "GOMAXPROCS": "1"})
    match = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    codes = re.findall(r"\[(\d{3})\]\s+(\d+) responses", out.stdout)
    total = sum(int(n) for _, n in codes)
    errors = sum(int(n) for code, n in codes if not code.startswith("2"))
    if "Error distribution:" in out.stdout:
        tail = out.stdout.split("Error distribution:", 1)[1]
        errors += sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]", tail, re.MULTILINE))
    return Measure("hey", rps=float(match.group(1)) if match else None,
                   cpu_rps=_per_cpu(total, cpu), errors=errors,
                   note=f"closed loop, GOMAXPROCS=1, {CONNECTIONS} workers")


def find_locust(explicit: str | None) -> str | None:
    for candidate in (explicit, os.environ.get("LOCUST"), shutil.which("locust"),
                      str(Path(sys.executable).with_name("locust")),
                      "/opt/locust-venv/bin/locust"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def locust_max(url: str, *, seconds: int, core: int | None, binary: str | None) -> Measure:
    if binary is None:
        return Measure("locust", note="missing: " + INSTALL["locust"])
    parts = urlsplit(url)
    cmd = [binary, "-f", str(Path(__file__).with_name("locustfile.py")), "--headless",
           "-u", str(CONNECTIONS), "-r", "1000", "-t", f"{seconds}s",
           "-H", f"{parts.scheme}://{parts.netloc}", "--json", "--loglevel", "WARNING"]
    out, cpu = timed(pinned(core, cmd), timeout=seconds + 60,
                     env={**os.environ, "BENCH_PATH": parts.path})
    stats = json.loads(out.stdout)
    if not stats:
        return Measure("locust", note="no requests recorded (run too short?)")
    total = sum(s["num_requests"] for s in stats)
    span = max(s["last_request_timestamp"] for s in stats) - min(s["start_time"] for s in stats)
    return Measure("locust", rps=total / span if span > 0 else None,
                   cpu_rps=_per_cpu(total, cpu),
                   errors=sum(s["num_failures"] for s in stats),
                   note=f"FastHttpUser, no wait, {CONNECTIONS} users, 1 process")
