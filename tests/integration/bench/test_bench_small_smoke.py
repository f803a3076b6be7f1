"""The kuar-only and client benchmarks work end to end, at tiny sizes, with every variant.

``bench.controlplane``, ``bench.typed``, ``bench.models``, ``bench.runtime``,
``bench.clients`` (lightkube and kr8s from the ``bench`` extra, ``make bench-tools``) and
``bench.transport`` (httpx with HTTP/2 from the same extra). Each must exit 0, give every
variant a figure and end with its key=value line; no speed is asserted.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.controlplane, pytest.mark.timeout(200)]

ROOT = Path(__file__).resolve().parents[3]


def run(*args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout.strip().splitlines()


def last_line(lines: list[str], keys: tuple[str, ...]) -> dict[str, float]:
    pairs = {k: float(v) for k, v in (pair.split("=") for pair in lines[-1].split())}
    assert tuple(pairs) == keys, lines[-1]
    assert all(not math.isnan(v) and v > 0 for v in pairs.values()), lines[-1]
    return pairs


def test_bench_controlplane() -> None:
    lines = run("bench.controlplane", "--runs", "1", "--settle", "0.5")
    last_line(lines, ("warm_start_s", "warm_start_full_s", "rss_mib"))


def test_bench_typed() -> None:
    from bench.typed.listing import VARIANTS

    lines = run("bench.typed", "--seconds", "0.05", "--objects", "30")
    last_line(lines, ("codec_variants", "slowest_codec_per_s", "typed_paged_per_s",
                      "dict_paged_per_s"))
    rows = {line.split()[0]: line.split() for line in lines if line.split()
            and line.split()[0] in VARIANTS}
    assert set(rows) == set(VARIANTS)
    assert all(int(cells[1]) == 30 for cells in rows.values())


def test_bench_models() -> None:
    lines = run("bench.models", "--runs", "1", "--pods", "30")
    last_line(lines, ("decode_ratio_generated_vs_handwritten", "generation_s", "kinds",
                      "lines"))


def test_bench_clients_with_every_library() -> None:
    lines = run("bench.clients", "--requests", "20", "--rounds", "1")
    last_line(lines, ("kuar_import_ms", "kuar_p50_ms", "kuar_get_per_s", "kuar_peak_rss_mib"))
    rows = {line.split()[0]: line.split()[2:] for line in lines[2:-1] if len(line.split()) == 6}
    assert set(rows) == {"kuar", "kuar-typed", "kubernetes_asyncio", "lightkube", "kr8s"}
    assert all(float(v) > 0 for cells in rows.values() for v in cells)


def test_bench_cache() -> None:
    from bench.cache.__main__ import VARIANTS

    lines = run("bench.cache", "--objects", "1000", "--rounds", "1", "--read-seconds", "0.02")
    last_line(lines, ("kib_per_object", "traced_kib_per_object", "ingest_per_s", "reads_per_s",
                      "typed_reads_per_s"))
    top = next(i for i, line in enumerate(lines) if line.startswith("variant")) + 1
    rows = {cells[0]: cells for cells in (line.split() for line in lines[top:top + 5])}
    assert set(rows) == set(VARIANTS) and all(len(cells) == 5 for cells in rows.values())
    for cells in rows.values():
        assert all(float(c.replace(",", "")) > 0 for c in cells[2:]), cells


def test_bench_runtime() -> None:
    lines = run("bench.runtime", "--keys", "50", "--rounds", "1", "--runs", "1",
                "--baseline", "HEAD")
    last_line(lines, ("reconcile_us", "watch_event_us", "reconcile_ratio_vs_before",
                      "watch_event_ratio_vs_before"))
    assert any(line.startswith("metrics exposition after a fixed scenario: identical")
               for line in lines), lines
    rows = {line.split()[0]: line.split() for line in lines if line.split()
            and line.split()[0] in ("before", "after")}
    assert set(rows) == {"before", "after"}


def test_bench_transport_gives_every_variant_both_loads() -> None:
    from bench.transport.__main__ import MODES, VARIANTS

    lines = run("bench.transport", "--quick")
    rows = {(cells[0], cells[1]) for cells in (line.split() for line in lines)
            if len(cells) > 2 and cells[0] in VARIANTS}
    assert rows == {(v, m) for v in VARIANTS for m in MODES}
    keys = tuple(f"{v.replace('-', '_')}_{m}_cpu_ms" for v in VARIANTS for m in MODES)
    load = lines[-1].rsplit(" ", 1)[1]
    assert load.startswith("load_avg="), lines[-1]  # may be 0.0 on an idle machine
    last_line([lines[-1].rsplit(" ", 1)[0]], (*keys, "thin_vs_aiohttp_patch_cpu"))
