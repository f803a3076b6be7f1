"""The worker's side of the start barrier: watch events, times, and giving up (no API server)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kuar_loadgen.barrier import (
    RunStart,
    StartError,
    in_cluster_server,
    parse_run,
    parse_time,
    start_from_event,
)


def test_the_start_time_comes_from_added_or_modified_events_only_once_set() -> None:
    run = {"metadata": {"name": "r"}, "status": {"phase": "Running"}}
    assert start_from_event({"type": "ADDED", "object": run}) is None
    started = {**run, "status": {"startAt": "2030-01-01T00:00:01.250Z"}}
    assert start_from_event({"type": "MODIFIED", "object": started}) == 1893456001.25
    assert start_from_event({"type": "BOOKMARK", "object": started}) is None
    with pytest.raises(ValueError, match="too old"):
        start_from_event({"type": "ERROR", "object": {"message": "too old resource version"}})


def test_a_deleted_run_ends_the_wait_at_once() -> None:
    with pytest.raises(Exception, match="deleted before it started"):
        start_from_event({"type": "DELETED", "object": {}})


def test_times_need_a_zone_and_runs_a_namespace() -> None:
    assert parse_time("2030-01-01T00:00:00+00:00") == 1893456000.0
    with pytest.raises(ValueError, match="no time zone"):
        parse_time("2030-01-01T00:00:00")
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time("soon")
    assert parse_run("team-a/r-run-1") == ("team-a", "r-run-1")
    for bad in ("r-run-1", "/r", "a/", "a/b/c"):
        with pytest.raises(ValueError, match="NAMESPACE/NAME"):
            parse_run(bad)


def test_the_in_cluster_address_comes_from_the_pod_environment() -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster_server(env) == "https://10.0.0.1:443"
    assert in_cluster_server({**env, "KUBERNETES_SERVICE_HOST": "fd00::1"}) == \
        "https://[fd00::1]:443"
    assert in_cluster_server({}) is None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens on it once closed


def test_bad_files_are_named_before_anything_runs(tmp_path: Path) -> None:
    run = RunStart(namespace="n", name="r", server="https://127.0.0.1:1",
                   token_file=str(tmp_path / "missing"))
    with pytest.raises(StartError, match=r"--api-token-file .*missing"):
        run.check()
    (tmp_path / "token").write_text("\n")
    with pytest.raises(StartError, match="empty"):
        RunStart(namespace="n", name="r", server="https://127.0.0.1:1",
                 token_file=str(tmp_path / "token")).check()
    (tmp_path / "token").write_text("abc")
    (tmp_path / "ca.crt").write_text("not a certificate")
    with pytest.raises(StartError, match="--api-ca-file"):
        RunStart(namespace="n", name="r", server="https://127.0.0.1:1",
                 token_file=str(tmp_path / "token"), ca_file=str(tmp_path / "ca.crt")).check()
    with pytest.raises(StartError, match="https://HOST:PORT"):
        RunStart(namespace="n", name="r", server="http://127.0.0.1:1",
                 token_file=str(tmp_path / "token")).check()


def test_a_wait_that_never_gets_a_time_gives_up_naming_the_run_and_the_last_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "token").write_text("abc")
    run = RunStart(namespace="team-a", name="r-run-1", server=f"https://127.0.0.1:{_closed_port()}",
                   token_file=str(tmp_path / "token"), timeout=5)
    now = [0.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    with pytest.raises(StartError) as info:
        run.wait(clock=lambda: now[0], sleep=sleep)
    message = str(info.value)
    assert "no start time for LoadTestRun team-a/r-run-1 within 5s" in message
    assert "Connection refused" in message, message
    assert pauses[:4] == [0.2, 0.4, 0.8, 1.6] and max(pauses) <= 2.0  # backoff, capped
