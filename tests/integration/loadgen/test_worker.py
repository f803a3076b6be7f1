"""The real worker against a real HTTP(S) server on 127.0.0.1: rate, outcomes, TLS, stalls."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from kuar_loadgen import LoadResult, LoadSpec, merge_results, run

from .server import self_signed, serve

pytestmark = pytest.mark.timeout(30)


def _spec(url: str, **kw: object) -> LoadSpec:
    base: dict[str, object] = {"urls": (url,), "rps": 200.0, "duration": 1.0, "processes": 1}
    base.update(kw)
    return LoadSpec(**base)  # type: ignore[arg-type]


def test_constant_rate_is_met_and_every_request_is_answered() -> None:
    with serve() as srv:
        r = run(_spec(f"http://127.0.0.1:{srv.port}/", rps=500.0, duration=3.0))
    assert r.requests == 1500
    assert r.responses == 1500 == srv.total
    assert r.errors == 0
    assert r.status_codes == {"200": 1500}
    assert r.achieved_rps == pytest.approx(500, rel=0.03)
    # Every request is answered (above); how evenly they land per second depends on the
    # machine's load, so this is a sanity bound: the 5 % target is bench/loadgen's to measure.
    for per_second in r.timeline["responses"][:3]:
        assert per_second == pytest.approx(500, rel=0.20)
    assert r.lateness_ms["p50"] < 5
    assert 0 < r.latency_ms["p50"] < 50


def test_requests_go_round_robin_over_paths() -> None:
    with serve() as srv:
        r = run(_spec(f"http://127.0.0.1:{srv.port}/", paths=("/a", "/b", "/c"), rps=300.0))
    assert r.responses == 300
    assert dict(srv.paths) == {"/a": 100, "/b": 100, "/c": 100}


def test_status_codes_are_counted_and_error_statuses_are_errors() -> None:
    with serve() as srv:
        r = run(_spec(f"http://127.0.0.1:{srv.port}/",
                      paths=("/status/200", "/status/404", "/status/503"), rps=150.0))
    assert r.status_codes == {"200": 50, "404": 50, "503": 50}
    assert r.error_kinds == {"http_4xx": 50, "http_5xx": 50}
    assert (r.responses, r.errors) == (150, 100)


def test_https_with_a_self_signed_certificate_reached_through_resolve(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "loadtest.example")
    with serve((cert, key)) as srv:
        url = f"https://loadtest.example:{srv.port}/"
        resolve = {f"loadtest.example:{srv.port}": f"127.0.0.1:{srv.port}"}
        verified = run(_spec(url, resolve=resolve, ca_file=str(cert)))
        untrusted = run(_spec(url, resolve=resolve, rps=20.0))
        insecure = run(_spec(url, resolve=resolve, rps=20.0, insecure=True))
    assert (verified.responses, verified.errors) == (200, 0)
    # The certificate names loadtest.example: SNI and verification used the URL's host.
    assert untrusted.responses == 0
    assert untrusted.error_kinds == {"tls": 20}
    assert insecure.responses == 20


def test_slow_responses_end_as_timeouts_counted_from_the_due_time() -> None:
    with serve() as srv:
        start = time.monotonic()
        r = run(_spec(f"http://127.0.0.1:{srv.port}/sleep/1.5", rps=20.0, timeout=0.3))
        took = time.monotonic() - start
    assert r.requests == 20
    assert r.responses == 0
    assert r.error_kinds == {"timeout": 20}
    assert took < 1.0 + 0.3 + 1.5  # the run does not wait for the server


def test_refused_connections_count_as_connect_errors() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    r = run(_spec(f"http://127.0.0.1:{port}/", rps=50.0))
    assert r.requests == 50
    assert r.responses == 0
    assert r.error_kinds == {"connect": 50}


@pytest.mark.parametrize("connections", [256, 4], ids=["pool-large", "pool-exhausted"])
def test_a_server_stalled_for_one_second_shows_in_p99(connections: int) -> None:
    """No coordinated omission: requests due during the stall are late from their due time.

    With 4 connections, the requests due during the stall wait for a connection, not for the
    server: only measuring from the due time (not the send time) shows their wait (checked by
    mutating the client to measure from the send: this case then fails with p99 ~3 ms).
    """
    with serve() as srv:
        start_at = time.time() + 0.5
        srv.stall(start_at + 1.0, start_at + 2.0)
        r = run(_spec(f"http://127.0.0.1:{srv.port}/", rps=200.0, duration=3.0,
                      start_at=start_at, connections=connections))
    assert r.responses == 600
    assert r.errors == 0
    # A third of the requests were due during the stall, waiting 0..1 s for it to end.
    assert r.latency_ms["p99"] >= 900
    assert r.latency_ms["max"] >= 950
    assert r.latency_ms["p50"] < 250  # the stall is in the tail, not in the median


def test_past_its_capacity_a_pool_drops_the_surplus_and_keeps_its_connections_busy() -> None:
    """A request that waited half its timeout for a connection is dropped, not sent late.

    2 connections to a 0.3 s service carry ~6.7 requests/s; 100/s are asked for. Sent after
    waiting up to the whole timeout (the old behaviour), requests timed out in flight, each
    timeout closing its connection; now the surplus is dropped and counted, and every request
    sent is answered within the timeout.
    """
    with serve() as srv:
        r = run(_spec(f"http://127.0.0.1:{srv.port}/sleep/0.3", rps=100.0, timeout=1.0,
                      connections=2))
    assert set(r.error_kinds) == {"dropped"}, r.error_kinds
    assert r.responses + r.error_kinds["dropped"] == r.requests == 100
    # sends continue until the last request's wait ends (1 s + 0.5 s): ~2 x 1.5 / 0.3 = 10
    assert 6 <= r.responses <= 14, r.responses
    assert srv.total == r.responses  # a dropped request never reaches the server
    assert r.latency_ms["max"] < 1000  # waited at most 0.5 s, then 0.3 s of service


def test_several_processes_split_the_rate_and_merge_their_results() -> None:
    with serve() as srv:
        r = run(_spec(f"http://127.0.0.1:{srv.port}/", rps=300.0, duration=2.0, processes=2))
    assert r.processes == 2
    assert r.shards == 1
    assert (r.requests, r.responses) == (600, 600)
    assert srv.total == 600
    assert r.achieved_rps == pytest.approx(300, rel=0.05)


def test_shards_started_together_issue_the_whole_schedule_between_them() -> None:
    with serve() as srv:
        start_at = time.time() + 0.3
        results: list[LoadResult] = []
        threads = [threading.Thread(target=lambda i=i: results.append(run(_spec(
            f"http://127.0.0.1:{srv.port}/", rps=200.0, duration=2.0, shard_index=i,
            shard_count=2, start_at=start_at)))) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    merged = merge_results(results)
    assert [r.requests for r in results] == [200, 200]
    assert (merged.requests, merged.responses, merged.shards) == (400, 400, 2)
    assert srv.total == 400
    assert merged.target_rps == 200
    assert merged.achieved_rps == pytest.approx(200, rel=0.05)
    assert merged.timeline["responses"][0] == pytest.approx(200, rel=0.20)
