"""``python -m bench.loadgen`` works end to end with every tool, at tiny sizes.

nginx, wrk and hey (Debian packages) and locust (the ``bench`` extra) must be installed:
``make test`` does it (``make bench-tools``). Asserts that every tool produced a figure; no
speed is asserted. Traffic stays on loopback (nginx on 127.0.0.1, started and stopped here).
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[3]
TOOLS = ("kuar-loadgen", "wrk", "hey", "locust")


def test_bench_loadgen_gives_every_tool_a_figure() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", "--runs", "2", "--seconds", "2",
         "--rate-seconds", "2", "--search-steps", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=220,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    last = dict(pair.split("=") for pair in lines[-1].split())
    assert tuple(last) == ("rps_per_core", "ratio_vs_locust", "ratio_vs_wrk", "rate_error_pct",
                           "stage_error_pct", "rps_1p", "rps_2p")
    assert all(not math.isnan(float(v)) for v in last.values()), lines[-1]

    at = next(i for i, line in enumerate(lines) if line.startswith("tool "))
    for tool, line in zip(TOOLS, lines[at + 1:at + 5], strict=True):
        assert line.split()[0] == tool, line
        median, lo, hi = (float(v.replace(",", "")) for v in
                          re.search(r"([\d,]+) \[([\d,]+), ([\d,]+)\]", line).groups())
        assert 0 < lo <= median <= hi, line
