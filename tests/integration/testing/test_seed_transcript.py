"""The seed's kubectl transcript, with the real kubectl on a control plane of its own.

A control plane of its own because the seed's CRD name (loadtests.beta.kuar.com) is also used
by kuar_loadtest's generated CRD in other tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources

import pytest

from kuar.testing import ControlPlane
from kuar.testing.pytest_plugin import Kubectl, make_kubectl


@pytest.fixture(scope="module")
def seed_plane() -> Iterator[ControlPlane]:
    with ControlPlane() as plane:
        yield plane


def _seed(name: str) -> str:
    return (resources.files("kuar_loadtest") / "seed" / name).read_text()


def test_seed_transcript_with_real_kubectl(seed_plane: ControlPlane) -> None:
    kubectl: Kubectl = make_kubectl(seed_plane)

    before = kubectl("get", "loadtests", check=False)
    assert before.returncode != 0
    assert 'error: the server doesn\'t have a resource type "loadtests"' in before.stderr

    kubectl("apply", "-f", "-", input=_seed("loadtest-crd.yaml"))
    kubectl("wait", "--for=condition=Established", "crd/loadtests.beta.kuar.com")
    empty = kubectl("get", "loadtests")
    assert empty.stdout == "" and empty.stderr.strip() == "No resources found in default namespace."

    kubectl("apply", "-f", "-", input=_seed("my-loadtest.yaml"))
    listed = kubectl("get", "loadtests")
    lines = listed.stdout.strip().splitlines()
    assert lines[0].split() == ["NAME", "AGE"]
    assert re.fullmatch(r"my-loadtest\s+\d+s", lines[1]), lines

    short = kubectl("get", "lt", "my-loadtest", "-o", "jsonpath={.spec.requestsPerSecond}")
    assert short.stdout == "1000"
