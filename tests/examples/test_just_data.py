"""Runs examples/just_data against the real control plane, as a separate process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.controlplane

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "just_data" / "main.py"


def _run(kubeconfig: Path, namespace: str, *extra: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--kubeconfig", str(kubeconfig), "--namespace",
         namespace, *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


async def test_just_data_example_reads_plans_through_the_typed_client(
    kubeconfig: Path, namespace: str, kubectl: object
) -> None:
    out = _run(kubeconfig, namespace, "--install").splitlines()
    assert out == [
        "refused half-way: Invalid value: the last step must send 100% of the traffic",
        "checkout: shift checkout 10% (10m) -> 50% (5m) -> 100% (5m); abort above 0.5% errors",
        "search: shift search 25% (2m) -> 100% (5m); abort above 1.0% errors",
    ]
    # a second run only reads: the data is still there, nothing else keeps it alive
    assert _run(kubeconfig, namespace).splitlines() == out[1:]
