"""LoadSpec: validation, JSON/env round trip, targets, --resolve, sharding."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kuar_loadgen.spec import (
    SPEC_ENV,
    LoadSpec,
    SpecError,
    available_cpus,
    parse_header,
    parse_resolve,
    spec_from_env,
)


def _spec(**kw: object) -> LoadSpec:
    base: dict[str, object] = {"urls": ("http://svc/",), "rps": 100.0, "duration": 5.0}
    base.update(kw)
    return LoadSpec(**base)  # type: ignore[arg-type]


def test_spec_round_trips_through_the_pod_environment() -> None:
    spec = _spec(urls=("https://my-service/",), paths=("/index.html", "/login.html"),
                 resolve={"my-service:443": "127.0.0.1:31443"}, headers=(("X-Run", "7"),),
                 shard_index=1, shard_count=3, start_at=1700000000.5, insecure=True,
                 timeout=2.5, processes=2, connections=32)
    env = spec.to_env()
    assert set(env) == {SPEC_ENV}
    assert LoadSpec.from_dict(spec_from_env(env)) == spec
    assert LoadSpec.from_dict(json.loads(spec.to_json())) == spec


def test_unknown_fields_are_refused_rather_than_ignored() -> None:
    with pytest.raises(SpecError, match=r"unknown spec field.*rsp"):
        LoadSpec.from_dict({"urls": ["http://a/"], "rps": 1, "duration": 1, "rsp": 5})


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"rps": 0.0}, "rps"),
        ({"rps": float("nan")}, "rps"),
        ({"duration": -1.0}, "duration"),
        ({"timeout": 0.0}, "timeout"),
        ({"urls": ()}, "urls"),
        ({"urls": ("ftp://a/",)}, "urls"),
        ({"urls": ("http:///nohost",)}, "urls"),
        ({"paths": ("index.html",)}, "paths"),
        ({"shard_index": 2, "shard_count": 2}, "shard_index"),
        ({"connections": 0}, "connections"),
        ({"resolve": {"svc": "127.0.0.1:80"}}, "resolve"),
        ({"headers": (("X-Bad\r\nInjected", "1"),)}, "headers"),
        ({"loop": "trio"}, "loop"),
    ],
)
def test_invalid_specs_name_the_bad_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError, match=field):
        _spec(**kw)


def test_from_dict_refuses_non_integer_counts() -> None:
    with pytest.raises(SpecError, match="processes"):
        LoadSpec.from_dict({"urls": ["http://a/"], "rps": 1, "duration": 1, "processes": 1.5})
    with pytest.raises(SpecError, match="needs urls, rps and duration"):
        LoadSpec.from_dict({"urls": ["http://a/"]})


def test_env_spec_must_be_a_json_object() -> None:
    with pytest.raises(SpecError, match="not valid JSON"):
        spec_from_env({SPEC_ENV: "{"})
    with pytest.raises(SpecError, match="JSON object"):
        spec_from_env({SPEC_ENV: "[1]"})


def test_indexed_job_completion_index_is_the_default_shard_index() -> None:
    spec_json = _spec(shard_count=4).to_dict()
    del spec_json["shard_index"]
    data = spec_from_env({SPEC_ENV: json.dumps(spec_json), "JOB_COMPLETION_INDEX": "3"})
    assert LoadSpec.from_dict(data).shard_index == 3
    # An explicit shard index wins over the Job's.
    data = spec_from_env({SPEC_ENV: _spec(shard_count=4, shard_index=1).to_json(),
                          "JOB_COMPLETION_INDEX": "3"})
    assert data["shard_index"] == 1


def test_paths_replace_the_url_path_in_round_robin_order() -> None:
    spec = _spec(urls=("https://my-service/ignored", "http://other:8080/x?q=1"),
                 paths=("/index.html", "/login.html"))
    assert [t.url for t in spec.targets()] == [
        "https://my-service/index.html", "https://my-service/login.html",
        "http://other:8080/index.html", "http://other:8080/login.html"]
    plain = _spec(urls=("http://other:8080/x?q=1", "http://h"))
    assert [t.path for t in plain.targets()] == ["/x?q=1", "/"]


def test_resolve_changes_only_the_address_dialled_like_curl() -> None:
    spec = _spec(urls=("https://my-service/",), resolve={"my-service:443": "127.0.0.1:31443"})
    [t] = spec.targets()
    assert (t.connect_host, t.connect_port) == ("127.0.0.1", 31443)
    assert (t.host, t.port, t.host_header) == ("my-service", 443, "my-service")
    [u] = _spec(urls=("http://svc:8080/a",)).targets()
    assert (u.connect_host, u.connect_port, u.host_header) == ("svc", 8080, "svc:8080")


def test_resolve_flags_accept_curl_and_address_with_port_forms() -> None:
    assert parse_resolve(["svc:443:127.0.0.1", "web:80=127.0.0.2:18080"]) == {
        "svc:443": "127.0.0.1:443", "web:80": "127.0.0.2:18080"}
    for bad in ("svc:443", "svc=1.2.3.4:5", "svc:x:1.2.3.4"):
        with pytest.raises(SpecError):
            parse_resolve([bad])


def test_header_flag_parsing() -> None:
    assert parse_header("X-Run:  42 ") == ("X-Run", "42")
    with pytest.raises(SpecError):
        parse_header("no colon")


def test_each_shard_issues_its_share_of_the_total_rate() -> None:
    assert _spec(rps=1000.0, shard_count=4).shard_rps == 250.0


def test_available_cpus_follows_affinity_and_the_pod_cpu_limit(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    assert available_cpus(str(tmp_path / "absent")) == affinity
    limit = tmp_path / "cpu.max"
    limit.write_text("max 100000\n")
    assert available_cpus(str(limit)) == affinity
    limit.write_text("50000 100000\n")  # half a CPU still runs one process
    assert available_cpus(str(limit)) == 1
    limit.write_text(f"{150000 * affinity} 100000\n")  # more quota than cores: cores win
    assert available_cpus(str(limit)) == affinity


def test_local_node_resolve_map_is_merged_under_the_specs_own() -> None:
    import json as _json

    from kuar_loadgen.spec import RESOLVE_ENV, SPEC_ENV, spec_from_env

    env = {
        SPEC_ENV: _json.dumps({"urls": ["http://web.ns.svc:80"], "rps": 10, "duration": 1,
                               "resolve": {"web.ns.svc:80": "127.0.0.1:1111"}}),
        RESOLVE_ENV: _json.dumps({"web.ns.svc:80": "127.0.0.1:2222",
                                  "db.ns.svc:5432": "127.0.0.1:3333"}),
    }
    data = spec_from_env(env)
    assert data["resolve"] == {"web.ns.svc:80": "127.0.0.1:1111",
                               "db.ns.svc:5432": "127.0.0.1:3333"}


# --- issue 14, finding 3: what goes into the request line ------------------------------------

@pytest.mark.parametrize("bad", [
    "/a\r\nX-Injected: 1", "/a\nb", "/a b", "/a\tb", "/a\x00b", "/a\x7fb", "/a\x85b",
    "/a\u2028b",
])
def test_paths_with_control_characters_or_spaces_are_refused_naming_the_path(bad: str) -> None:
    with pytest.raises(SpecError, match=r"^paths\[1\]: .*control characters"):
        _spec(paths=("/ok", bad))


@pytest.mark.parametrize("url", [
    "http://svc/a b", "http://svc/a\r\nX-Injected: 1", "http://svc/a\x00", "http://svc/\tx",
    "http://bücher.example/",
])
def test_urls_that_would_break_the_request_line_are_refused(url: str) -> None:
    with pytest.raises(SpecError, match=r"^urls"):
        _spec(urls=(url,))


@pytest.mark.parametrize(("name", "value"), [
    ("X-Run", "a\x00b"), ("X-Run", "€"), ("X Run", "1"), ("X-Run\x7f", "1"), ("", "1"),
])
def test_headers_that_would_break_the_request_are_refused(name: str, value: str) -> None:
    with pytest.raises(SpecError, match=r"^headers"):
        _spec(headers=((name, value),))


def test_lone_surrogates_are_refused_not_crashed_on() -> None:
    with pytest.raises(SpecError, match=r"^paths\[0\]"):
        _spec(paths=("/\ud800",))


def test_non_ascii_paths_are_percent_encoded_as_utf8_and_sendable() -> None:
    from kuar_loadgen._client import request_bytes

    spec = _spec(urls=("http://svc/über?q=ä",),
                 paths=("/€", "/caf%C3%A9", "/ページ?x=ü", "/plain"))
    assert [t.path for t in spec.targets()] == [
        "/%E2%82%AC", "/caf%C3%A9", "/%E3%83%9A%E3%83%BC%E3%82%B8?x=%C3%BC", "/plain"]
    [from_url] = _spec(urls=("http://svc/über?q=ä",)).targets()
    assert from_url.path == "/%C3%BCber?q=%C3%A4"
    for target in spec.targets():
        line = request_bytes(target).split(b"\r\n")[0]
        assert line == f"GET {target.path} HTTP/1.1".encode()
    # what the spec holds is what the user wrote (the pod env round-trips unchanged)
    assert LoadSpec.from_dict(json.loads(spec.to_json())).paths[0] == "/€"


def test_path_rules_are_shared_with_the_webhook() -> None:
    from kuar_loadgen.spec import encode_path, path_problem

    assert path_problem("/ok/€?a=%20") is None
    assert path_problem("nope") == "must start with '/'"
    assert "control characters" in (path_problem("/a b") or "")
    assert encode_path("/a%20b/é") == "/a%20b/%C3%A9"
