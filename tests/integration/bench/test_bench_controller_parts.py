"""bench/controller's pure parts: skipping a contender with a reason, percentiles, the table."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from bench.controller import contenders
from bench.controller.__main__ import ROWS, table
from bench.controller.phases import pct


def test_go_column_is_skipped_with_a_reason_when_go_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(contenders.shutil, "which", lambda name: None)
    found, missing = contenders.available(["kuar", "controller-runtime"])
    assert [c.name for c in found] == ["kuar"]
    assert "go not found" in missing["controller-runtime"]


def test_kopf_column_is_skipped_with_a_reason_when_kopf_is_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = contenders.importlib.util.find_spec
    monkeypatch.setattr(contenders.importlib.util, "find_spec",
                        lambda name: None if name == "kopf" else real(name))
    found, missing = contenders.available(["kopf", "kuar"])
    assert [c.name for c in found] == ["kuar"]
    assert "bench" in missing["kopf"]  # names the extra that installs it


def test_go_build_failure_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("KUAR_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(contenders.shutil, "which", lambda name: "/bin/false")
    binary, why = contenders.build_go()
    assert binary is None
    assert why.startswith("go build failed")


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert pct(values, 0.5) == 50
    assert pct(values, 0.99) == 99
    assert pct([7.0], 0.99) == 7
    assert math.isnan(pct([], 0.5))


def test_table_has_one_row_per_measure_and_dashes_for_a_failed_contender() -> None:
    results = {"kuar": {key: 1.0 for key, _, _ in ROWS}, "kopf": None}
    lines = table(results, ["kuar", "kopf"]).splitlines()
    assert lines[0].split() == ["kuar", "kopf"]
    assert len(lines) == 1 + len(ROWS)
    assert all(line.split()[-1] == "-" for line in lines[1:])
