"""bench/controller's pure parts: skipping a contender with a reason, percentiles, the table."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from bench.controller import contenders
from bench.controller.__main__ import HEADLINE, ROWS, headline, table
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


def test_kopf_and_controller_runtime_rows_differ_only_in_their_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setattr(contenders, "build_go", lambda: (tmp_path / "ctrlbench", ""))
    found, missing = contenders.available(
        ["kopf", "kopf-limit10", "controller-runtime", "controller-runtime-unstructured"])
    assert not missing
    argv = {c.name: c.argv for c in found}
    assert argv["kopf-limit10"] == (*argv["kopf"], "--limit-10")
    assert argv["controller-runtime-unstructured"] == (*argv["controller-runtime"],
                                                       "-unstructured")


def test_headline_shows_median_min_and_max_per_contender() -> None:
    figures = {}
    for key, _, _ in HEADLINE:
        figures |= {key: 2.0, f"{key}_min": 1.0, f"{key}_max": 3.0}
    lines = headline({"kuar": figures, "kopf": None}, ["kuar", "kopf"]).splitlines()
    assert len(lines) == 3
    assert lines[1].split()[0] == "kuar" and lines[1].count("[") == len(HEADLINE)
    assert lines[2].split() == ["kopf"] + ["-"] * len(HEADLINE)


def test_table_has_one_row_per_measure_and_dashes_for_a_failed_contender() -> None:
    results = {"kuar": {key: 1.0 for key, _, _ in ROWS}, "kopf": None}
    lines = table(results, ["kuar", "kopf"]).splitlines()
    assert lines[0].split() == ["kuar", "kopf"]
    assert len(lines) == 1 + len(ROWS)
    assert all(line.split()[-1] == "-" for line in lines[1:])
