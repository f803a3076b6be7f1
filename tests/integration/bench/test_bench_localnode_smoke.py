"""``bench.localnode`` works end to end at a tiny size: every variant gets a figure and the
last line carries its keys; no speed is asserted."""

from __future__ import annotations

import pytest

from tests.integration.bench.test_bench_small_smoke import last_line, run

pytestmark = [pytest.mark.controlplane, pytest.mark.timeout(200)]


def test_bench_localnode() -> None:
    lines = run("bench.localnode", "--pods", "2")
    last_line(lines, ("none_ms", "api_access_ms", "configmap_secret_ms", "api_access_vs_none"))
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert set(rows) == {"none", "kube-api-access", "configmap+secret"}
    assert all(cells[1] == "2" for cells in rows.values())
