"""Issue 14, findings 3 and 13: kuar-loadgen's bad input and exit codes, as a process.

Exit codes (docs/loadgen.md, ``kuar-loadgen --help``): 0 the run got answers, 1 the run
completed but no request got an answer (the result is still written), 2 bad input (flags, spec,
files), 3 could not run. Bad input is one ``error:`` line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kuar_loadgen import SPEC_ENV, LoadResult, LoadSpec

from .server import self_signed, serve

pytestmark = pytest.mark.timeout(60)


def _loadgen(*args: str, env: dict[str, str] | None = None,
             timeout: float = 30) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KUAR_LOADGEN")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "kuar_loadgen", *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env, check=False)


def _one_error_line(out: subprocess.CompletedProcess[str], *words: str) -> str:
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: "), out.stderr
    for word in words:
        assert word in lines[0], out.stderr
    return lines[0]


def test_a_missing_ca_file_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    out = _loadgen("--url", "https://127.0.0.1:9/", "--rps", "5", "--duration", "1",
                   "--ca-file", str(missing), "--processes", "1")
    assert out.returncode == 2
    _one_error_line(out, "--ca-file", str(missing))
    # the same from the pod's JSON spec, and a file that is not PEM
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    spec = LoadSpec(urls=("https://127.0.0.1:9/",), rps=5, duration=1, processes=1,
                    ca_file=str(garbage))
    out = _loadgen(env=spec.to_env())
    assert out.returncode == 2
    _one_error_line(out, str(garbage))


@pytest.mark.parametrize("path", ["/a\r\nX-Injected: 1", "/a b", "/\x7f"])
def test_a_path_with_control_characters_is_one_error_line_and_exit_2(path: str) -> None:
    spec = LoadSpec(urls=("http://127.0.0.1:9/",), rps=5, duration=1, processes=1)
    data = {**spec.to_dict(), "paths": ["/ok", path]}
    out = _loadgen(env={SPEC_ENV: json.dumps(data)})
    assert out.returncode == 2
    _one_error_line(out, "paths[1]", "control characters")


def test_usage_errors_are_one_line_too() -> None:
    out = _loadgen("--url", "http://127.0.0.1:9/", "--rps", "fast", "--duration", "1")
    assert out.returncode == 2
    _one_error_line(out, "--rps")
    out = _loadgen("--url", "http://127.0.0.1:9/", "--duration", "1")
    assert out.returncode == 2
    _one_error_line(out, "--rps")


def test_a_non_ascii_path_is_sent_percent_encoded(tmp_path: Path) -> None:
    with serve() as srv:
        out = _loadgen("--url", f"http://127.0.0.1:{srv.port}/", "--path", "/€",
                       "--path", "/ok", "--rps", "20", "--duration", "1", "--processes", "1",
                       "--json")
        assert out.returncode == 0, out.stderr
        assert "Traceback" not in out.stderr
        assert dict(srv.paths) == {"/€": 10, "/ok": 10}  # the server decoded %E2%82%AC
    assert json.loads(out.stdout.splitlines()[-1])["status_codes"] == {"200": 20}


def test_every_request_failing_exits_1_with_the_result_still_written(tmp_path: Path) -> None:
    result_file = tmp_path / "termination-log"
    out = _loadgen("--url", "http://127.0.0.1:9/", "--rps", "20", "--duration", "0.5",
                   "--processes", "1", "--json", "--result-file", str(result_file))
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "no request got an answer" in out.stderr
    last = LoadResult.from_json(out.stdout.splitlines()[-1])
    assert (last.requests, last.responses, last.error_kinds) == (10, 0, {"connect": 10})
    assert LoadResult.from_json(result_file.read_text()).responses == 0


def test_error_statuses_are_answers_exit_0() -> None:
    with serve() as srv:
        out = _loadgen("--url", f"http://127.0.0.1:{srv.port}/status/503", "--rps", "20",
                       "--duration", "0.5", "--processes", "1", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["status_codes"] == {"503": 10}


def test_an_unwritable_result_file_is_bad_input_before_the_run(tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "result.json"
    out = _loadgen("--url", "http://127.0.0.1:9/", "--rps", "5", "--duration", "1",
                   "--processes", "1", "--result-file", str(target))
    assert out.returncode == 2
    _one_error_line(out, "--result-file", str(target))


def test_a_busy_metrics_port_could_not_start_exit_3() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = _loadgen("--url", "http://127.0.0.1:9/", "--rps", "5", "--duration", "1",
                       "--processes", "1", "--metrics-port", str(port))
    assert out.returncode == 3
    _one_error_line(out, "metrics", str(port))


def test_help_documents_the_exit_codes() -> None:
    out = _loadgen("--help")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    for words in ("0 the run got answers", "1 the run completed but no request got an answer",
                  "2 bad input", "3 could not run"):
        assert words in text, out.stdout


def test_https_with_a_good_ca_file_still_works(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "localhost")
    with serve(tls=(cert, key)) as srv:
        out = _loadgen("--url", f"https://localhost:{srv.port}/", "--resolve",
                       f"localhost:{srv.port}:127.0.0.1", "--ca-file", str(cert), "--rps",
                       "10", "--duration", "0.5", "--processes", "1", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["status_codes"] == {"200": 5}
