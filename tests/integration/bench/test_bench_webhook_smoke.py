"""``python -m bench.webhook`` works end to end with every server, at tiny sizes.

kopf (the ``bench`` extra) and Go must be there (``make test`` installs them). Asserts that
every server produced a figure in both tables and in the scaling table; no speed is asserted.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.controlplane, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[3]
SERVERS = ("kuar", "kopf", "controller-runtime (Go)")
MANY = "kuar x 2 (SO_REUSEPORT)"
KEYS = ("reviews_per_s", "p99_ms", "ratio_vs_kopf", "ratio_vs_controller_runtime",
        "create_overhead_p50_ms", "per_core_ratio_vs_controller_runtime", "errors",
        "scaling_processes", "scaling_efficiency", "scaling_rps_ratio", "scaling_busiest_share")


def test_bench_webhook_gives_every_server_a_figure() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.webhook", "--runs", "2", "--seconds", "1",
         "--creates", "5", "--half-rate", "200", "--nice", "0", "--processes", "2",
         "--scaling-conns", "8"],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    last = dict(pair.split("=") for pair in lines[-1].split())
    assert tuple(last) == KEYS
    assert all(not math.isnan(float(v)) for v in last.values()), lines[-1]

    tables = [i for i, line in enumerate(lines) if line.startswith("server (one process)")]
    assert len(tables) == 2  # closed loop (with the SO_REUSEPORT pair), open loop
    for at, names in zip(tables, ({*SERVERS, MANY}, set(SERVERS)), strict=True):
        rows = {line[:32].strip(): line[32:].split()
                for line in lines[at + 1:at + 1 + len(names)]}
        assert set(rows) == names
        for cells in rows.values():
            # "median [min, max]" reviews/s, per CPU-s, p50, p99, max, errors
            assert "-" not in cells and len(cells) == 8, cells
            assert float(cells[0]) > 0 and float(cells[5]) > 0, cells

    # the scaling table: 1 and 2 processes at 8 connections, each with reviews served
    at = next(i for i, line in enumerate(lines) if line.lstrip().startswith("conns procs"))
    for line, procs in zip(lines[at + 1:at + 3], ("1", "2"), strict=True):
        cells = line.split()
        assert cells[:2] == ["8", procs], line
        # reviews/s [min, max], server CPU/s, per server CPU-s, efficiency, busiest, of conns
        assert all(float(c) > 0 for c in (cells[2], cells[5], cells[6], cells[7])), line
        assert not math.isnan(float(cells[9])), line  # connections were seen mid-run
