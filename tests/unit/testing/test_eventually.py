"""eventually() retries until a check passes and re-raises the last failure on timeout."""

from __future__ import annotations

import pytest

from kuar.testing import eventually, eventually_async


def test_eventually_returns_when_check_passes() -> None:
    calls = []

    def check() -> int:
        calls.append(1)
        assert len(calls) >= 3
        return len(calls)

    assert eventually(check, timeout=5, interval=0) == 3


def test_eventually_reraises_last_failure() -> None:
    def check() -> None:
        raise AssertionError("still wrong")

    with pytest.raises(AssertionError, match="still wrong"):
        eventually(check, timeout=0.05, interval=0.01)


def test_eventually_treats_false_as_failure() -> None:
    with pytest.raises(AssertionError, match="still returned False"):
        eventually(lambda: False, timeout=0.05, interval=0.01)


async def test_eventually_async() -> None:
    state = {"n": 0}

    async def check() -> str:
        state["n"] += 1
        assert state["n"] > 2
        return "ok"

    assert await eventually_async(check, timeout=5, interval=0) == "ok"
