"""``kuar-loadgen`` as a process: JSON last line, result file, env spec, exit codes, metrics."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kuar_loadgen import SPEC_ENV, LoadResult, LoadSpec

from .server import serve

pytestmark = pytest.mark.timeout(30)


def _loadgen(*args: str, env: dict[str, str] | None = None,
             timeout: float = 20) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KUAR_LOADGEN")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "kuar_loadgen", *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env, check=False)


def test_json_output_ends_with_the_result_and_the_result_file_fits_a_termination_message(
        tmp_path: Path) -> None:
    result_file = tmp_path / "termination-log"
    with serve() as srv:
        out = _loadgen("--url", f"http://127.0.0.1:{srv.port}/", "--rps", "200", "--duration",
                       "1", "--processes", "1", "--json", "--result-file", str(result_file),
                       "--progress")
    assert "sent 200/200" in out.stderr  # the bar goes to stderr; stdout stays parseable
    assert out.returncode == 0, out.stderr
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last["version"] == 1
    assert (last["requests"], last["errors"]) == (200, 0)
    assert last["achieved_rps"] == pytest.approx(200, rel=0.05)
    assert set(last["latency_ms"]) >= {"p50", "p90", "p99", "max"}
    assert last["histogram"].startswith("HISTF")
    written = result_file.read_bytes()
    assert len(written) <= 4096
    assert LoadResult.from_json(written.decode()).requests == 200


def test_spec_comes_from_the_environment_and_flags_override_it() -> None:
    with serve() as srv:
        spec = LoadSpec(urls=(f"http://127.0.0.1:{srv.port}/",), rps=100.0, duration=1.0,
                        processes=1, paths=("/from-env",))
        out = _loadgen("--rps", "40", "--json", env=spec.to_env())
    assert out.returncode == 0, out.stderr
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last["requests"] == 40  # --rps won over the env's 100
    assert dict(srv.paths) == {"/from-env": 40}


def test_invalid_specs_exit_with_usage_error_naming_the_field() -> None:
    out = _loadgen("--url", "http://127.0.0.1:9/", "--rps", "0", "--duration", "1")
    assert out.returncode == 2
    assert "rps" in out.stderr
    out = _loadgen("--rps", "5", env={SPEC_ENV: "{not json"})
    assert out.returncode == 2
    assert SPEC_ENV in out.stderr


def test_human_summary_without_json() -> None:
    with serve() as srv:
        out = _loadgen("--url", f"http://127.0.0.1:{srv.port}/", "--rps", "50", "--duration",
                       "0.5", "--processes", "1", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "achieved rps" in out.stdout
    assert "latency p99" in out.stdout


def test_prometheus_metrics_are_served_during_the_run() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with serve() as srv:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kuar_loadgen", "--url", f"http://127.0.0.1:{srv.port}/",
             "--rps", "100", "--duration", "3", "--processes", "1", "--json",
             "--metrics-port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            body, deadline = "", time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                                timeout=2) as resp:
                        body = resp.read().decode()
                    if _metric(body, "kuar_loadgen_responses_total") > 0:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            assert _metric(body, "kuar_loadgen_responses_total") > 0, body
            assert _metric(body, "kuar_loadgen_target_requests_per_second") == 100
            assert 'kuar_loadgen_latency_seconds{quantile="0.99"}' in body
            proc.wait(15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0


def _metric(body: str, name: str) -> float:
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return -1.0


def _children(pid: int) -> set[int]:
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.add(int(stat.parent.name))
    return kids


def test_sigterm_stops_the_run_and_its_worker_processes() -> None:
    with serve() as srv:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kuar_loadgen", "--url", f"http://127.0.0.1:{srv.port}/",
             "--rps", "100", "--duration", "20", "--processes", "2", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 10
            while srv.total == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            workers = _children(proc.pid)
            assert len(workers) >= 2
            proc.terminate()
            assert proc.wait(5) == 128 + 15
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    time.sleep(0.5)
    assert not [p for p in workers if Path(f"/proc/{p}").exists()
                and "Z" not in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1][:3]]


def _workers(pid: int) -> set[int]:
    """The spawned worker processes of kuar-loadgen ``pid`` (not multiprocessing's helpers)."""
    found = set()
    for kid in _children(pid):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{kid}/cmdline").read_bytes():
                found.add(kid)
    return found


def _running(pid: int) -> bool:
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]
    except OSError:
        return False


def test_workers_exit_when_their_parent_is_sigkilled() -> None:
    """Issue 14, finding 11b: a SIGKILLed kuar-loadgen leaves no worker sending load."""
    workers: set[int] = set()
    with serve() as srv:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kuar_loadgen", "--url", f"http://127.0.0.1:{srv.port}/",
             "--rps", "100", "--duration", "120", "--processes", "2", "--json",
             "--no-progress"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 15
            while (srv.total == 0 or len(workers) < 2) and time.monotonic() < deadline:
                workers = _workers(proc.pid)
                time.sleep(0.1)
            assert len(workers) == 2 and srv.total > 0
            proc.kill()
            proc.wait()
            deadline = time.monotonic() + 5
            while any(_running(p) for p in workers) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not [p for p in workers if _running(p)], "workers outlived their parent"
            seen = srv.total
            time.sleep(1.0)
            assert srv.total == seen, "requests still arrive after the parent died"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pid in workers:  # the "before" run: end the orphans this test started
                with contextlib.suppress(OSError):
                    if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        os.kill(pid, signal.SIGKILL)


def test_a_crossed_threshold_exits_4_and_abort_on_fail_stops_early() -> None:
    with serve() as srv:
        slow = f"http://127.0.0.1:{srv.port}/sleep/0.05"
        held = _loadgen("--url", slow, "--rps", "50", "--duration", "1", "--processes", "1",
                        "--json", "--threshold", "p99 < 2s", "--threshold", "errorRate < 1%")
        crossed = _loadgen("--url", slow, "--rps", "50", "--duration", "1", "--processes",
                           "1", "--json", "--threshold", "p50 < 10ms")
        aborted = _loadgen("--url", slow, "--rps", "100", "--duration", "10", "--processes",
                           "1", "--json", "--threshold", "p95 < 10ms", "--abort-on-fail")
        bad = _loadgen("--url", slow, "--rps", "10", "--duration", "1",
                       "--threshold", "p99 <<< 5")
    assert held.returncode == 0 and "held" in held.stderr, held.stderr
    assert crossed.returncode == 4, crossed.stderr
    assert crossed.stderr.strip().splitlines()[-1].startswith(
        "error: threshold crossed: p50 < 10ms crossed (observed ")
    assert json.loads(crossed.stdout.strip().splitlines()[-1])["requests"] == 50  # written
    assert aborted.returncode == 4
    last = json.loads(aborted.stdout.strip().splitlines()[-1])
    assert last["aborted"].startswith("threshold p95 < 10ms crossed")
    assert last["requests"] < 500  # stopped after about a second of ten
    assert bad.returncode == 2 and "thresholds[0]" in bad.stderr


def test_stages_run_a_ramp_and_a_bad_stage_is_refused() -> None:
    with serve() as srv:
        out = _loadgen("--url", f"http://127.0.0.1:{srv.port}/", "--processes", "1", "--json",
                       "--start-rate", "0", "--stage", "1:100", "--stage", "1:100")
        bad = _loadgen("--url", f"http://127.0.0.1:{srv.port}/", "--stage", "0:100")
    assert out.returncode == 0, out.stderr
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last["requests"] == 150 and last["timeline"]["sent"][:2] == [50, 100]
    assert bad.returncode == 2 and "stages[0].duration" in bad.stderr
