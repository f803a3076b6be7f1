"""The worker's spec as a file and bodies as files (a LoadTest pod's run volume)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kuar_loadgen.mix import MAX_BODY, MixError, RequestKind, body_of, check_mix
from kuar_loadgen.spec import LoadSpec, SpecError, path_problem, spec_from_env, spec_from_file


def test_a_spec_file_reads_back_with_bodies_relative_to_its_folder(tmp_path: Path) -> None:
    spec = LoadSpec(urls=("http://web:80",), rps=10, duration=1, requests=(
        RequestKind(method="POST", body_file="body-0"),
        RequestKind(method="PUT", body="inline")))
    (tmp_path / "spec.json").write_text(spec.to_json())
    (tmp_path / "body-0").write_bytes(b"x" * MAX_BODY)  # the largest body a request may have
    read = LoadSpec.from_dict(spec_from_file(str(tmp_path / "spec.json")))
    assert read.requests[0].body_file == str(tmp_path / "body-0")
    assert body_of(read.requests[0], 0) == b"x" * MAX_BODY
    assert body_of(read.requests[1], 1) == b"inline"


def test_a_bad_spec_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"--spec-file .*missing"):
        spec_from_file(str(tmp_path / "missing"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        spec_from_file(str(tmp_path / "bad.json"))
    (tmp_path / "list.json").write_text(json.dumps([1]))
    with pytest.raises(SpecError, match="JSON object"):
        spec_from_file(str(tmp_path / "list.json"))


def test_a_missing_or_too_large_body_file_is_named_never_its_content(tmp_path: Path) -> None:
    with pytest.raises(MixError, match=r"requests\[2\].body_file: .*absent"):
        body_of(RequestKind(method="POST", body_file=str(tmp_path / "absent")), 2)
    big = tmp_path / "big"
    big.write_bytes(b"s3cr3t" * (MAX_BODY // 6 + 1))
    with pytest.raises(MixError, match="larger than 1 MiB") as info:
        body_of(RequestKind(method="POST", body_file=str(big)), 0)
    assert "s3cr3t" not in str(info.value)


def test_one_source_per_body() -> None:
    with pytest.raises(MixError, match="exclusive"):
        check_mix([RequestKind(method="POST", body="a", body_file="b")], path_problem)


def test_a_spec_file_still_takes_the_pods_shard_and_service_map(tmp_path: Path) -> None:
    data = LoadSpec(urls=("http://web:80",), rps=10, duration=1, shard_count=2).to_dict()
    del data["shard_index"]  # as the LoadTest operator writes it
    (tmp_path / "spec.json").write_text(json.dumps(data))
    env = {"JOB_COMPLETION_INDEX": "1", "KUAR_RESOLVE": '{"web:80": "127.0.0.1:8080"}',
           "KUAR_LOADGEN_SPEC": '{"ignored": true}'}
    merged = spec_from_env(env, base=spec_from_file(str(tmp_path / "spec.json")))
    spec = LoadSpec.from_dict(merged)
    assert spec.shard_index == 1 and spec.resolve == {"web:80": "127.0.0.1:8080"}
