"""``python -m bench.controller`` works end to end with every contender, at tiny sizes.

kopf (the ``bench`` extra) and the Go program (built once into ~/.cache/kuar/bench) must be
there: ``make test`` installs them (``make bench-tools``). Asserts that every contender
produced every figure; no speed is asserted (benchmarks are not tests).
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bench.controller.__main__ import ALL, HEADLINE, LATENCY, MEMORY, ROWS

pytestmark = [pytest.mark.controlplane, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[3]
KEYS = ("ratio_vs_controller_runtime", "ratio_vs_kopf", "p99_ms", "kib_per_object",
        "cold_ratio_vs_controller_runtime", "cold_ratio_vs_kopf", "cpu_ms_per_object",
        "ceiling_ratio_vs_kopf", "burst_p50_ratio_vs_kopf", "burst100_p50_ratio_vs_kopf")


def test_bench_controller_gives_every_contender_every_figure() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.controller", "--burst", "20", "--rate", "20",
         "--steady-seconds", "1", "--slices", "2", "--cached", "40", "--cold-writes", "30",
         "--runs", "2", "--settle", "0.1", "--scale", "30", "--ceiling-writers", "2,4"],
        cwd=ROOT, capture_output=True, text=True, timeout=580,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert not any(line.startswith("skipping") for line in lines), lines[:5]

    last = dict(pair.split("=") for pair in lines[-1].split())
    assert tuple(last) == KEYS
    assert all(not math.isnan(float(v)) for v in last.values()), lines[-1]

    # the headline and the memory figures: one line per contender, cells "median [min, max]"
    for cells in spread_block(lines, "cold start", ALL, len(HEADLINE)):
        assert all(float(median) > 0 for median, _, _ in cells), cells
    memory_block(lines, ALL)
    # the per-turn latency percentiles (3 bursts by default, 2 steady slices): median [min, max]
    for cells in spread_block(lines, "latency", ALL, len(LATENCY)):
        assert all(float(median) > 0 for median, _, _ in cells), cells
    # the API server's ceiling (the Go program with -ceiling), one row per writer count
    ceilings = [line for line in lines if line.startswith("API server ceiling")]
    assert [re.search(r"by (\d+) client-go", c).group(1) for c in ceilings] == ["2", "4"]
    for ceiling in ceilings:
        assert float(re.search(r": (\S+) \[", ceiling).group(1)) > 0, ceiling

    # the secondary table: a figure in every cell
    start = lines.index("secondary (medians):") + 2
    rows = lines[start:start + len(ROWS)]
    assert len(rows) == len(ROWS)
    for (_, label, _), line in zip(ROWS, rows, strict=True):
        assert line.startswith(label)
        cells = line[len(label):].split()
        assert len(cells) == len(ALL) and "-" not in cells, line
        assert all(not math.isnan(float(c)) for c in cells), line

    # the scale row: kuar and typed controller-runtime
    at = next(i for i, line in enumerate(lines) if line.startswith("scale: one fresh process"))
    for name, line in zip(("kuar", "controller-runtime"), lines[at + 2:at + 4], strict=True):
        cells = line.split()
        assert cells[0] == name and len(cells) == 4, line
        assert all(float(c) > 0 for c in cells[1:]), line


def spread_block(lines: list[str], title: str, names: tuple[str, ...], width: int
                 ) -> list[list[tuple[str, str, str]]]:
    """The ``title (median [min, max] of the ...):`` block: each contender's cells, checked."""
    top = next(i for i, line in enumerate(lines)
               if line.startswith(f"{title} (median [min, max] of the ")) + 2
    rows = []
    for name, line in zip(names, lines[top:top + len(names)], strict=True):
        assert line.split()[0] == name
        cells = re.findall(r"(\S+) \[(\S+), (\S+)\]", line)
        assert len(cells) == width, line
        for median, lo, hi in cells:
            assert float(lo) <= float(median) <= float(hi), line
        rows.append(cells)
    return rows


def memory_block(lines: list[str], names: tuple[str, ...]) -> None:
    """Idle RSS and RSS per cached object for every contender (idle RSS above 0)."""
    for cells in spread_block(lines, "memory", names, len(MEMORY)):
        assert float(cells[0][0]) > 0, cells


def test_bench_controller_only_cache_gives_the_memory_figures() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.controller", "--only-cache", "--contenders", "kuar",
         "--cached", "30", "--runs", "2", "--settle", "0.1"],
        cwd=ROOT, capture_output=True, text=True, timeout=580,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    memory_block(lines, ("kuar",))
    last = dict(pair.split("=") for pair in lines[-1].split())
    assert tuple(last) == KEYS and not math.isnan(float(last["kib_per_object"])), lines[-1]
