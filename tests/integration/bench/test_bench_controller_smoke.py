"""``python -m bench.controller`` works end to end: kuar only, tiny counts, own control plane.

Independent of kopf and Go (their columns are not asked for, so their ratios are ``nan``).
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.controlplane, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[3]
LAST = re.compile(
    r"^ratio_vs_controller_runtime=(\S+) ratio_vs_kopf=(\S+) p99_ms=(\S+) kib_per_object=(\S+)$"
)


def test_bench_controller_prints_the_table_and_the_last_line_for_kuar() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.controller", "--contenders", "kuar", "--burst", "30",
         "--rate", "20", "--steady-seconds", "1", "--cached", "60", "--settle", "0.2"],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()

    match = LAST.match(lines[-1])
    assert match, lines[-1]
    vs_cr, vs_kopf, p99, kib = (float(g) for g in match.groups())
    assert math.isnan(vs_cr) and math.isnan(vs_kopf)  # only kuar ran
    assert 0 < p99 < 10_000
    assert not math.isnan(kib)

    start = next(i for i, line in enumerate(lines) if line.split() == ["kuar"]) + 1
    end = lines.index("", start)
    rows = dict(line.rsplit(None, 1) for line in lines[start:end])
    assert len(rows) >= 10
    assert float(rows["burst: throughput (objects/s)"]) > 0
    assert float(rows["burst: create-to-status p99 (ms)"]) > 0
    assert float(rows["steady: event-to-reconcile p99 (ms)"]) == pytest.approx(p99, abs=0.05)
    assert float(rows["cache: start to synced (s)"]) > 0
    assert float(rows["reconcile calls per object"]) >= 1
