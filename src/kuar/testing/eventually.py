"""Retry a check until it passes or time runs out (Gomega's ``Eventually`` for Python).

A check passes when it returns without raising and its result is not ``False``. On timeout
the last failure is raised (an ``AssertionError`` naming the check when it only returned
``False``), so the test report shows what was still wrong.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05) -> T:
    """Call ``check`` until it passes; return its result."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result is not False:
                return result
            failure: BaseException = AssertionError(f"{check!r} still returned False")
        except (AssertionError, Exception) as exc:
            failure = exc
        if time.monotonic() >= deadline:
            raise failure
        time.sleep(interval)


async def eventually_async(
    check: Callable[[], Awaitable[T]], *, timeout: float = 10.0, interval: float = 0.05
) -> T:
    """Await ``check()`` until it passes; return its result."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await check()
            if result is not False:
                return result
            failure: BaseException = AssertionError(f"{check!r} still returned False")
        except (AssertionError, Exception) as exc:
            failure = exc
        if time.monotonic() >= deadline:
            raise failure
        await asyncio.sleep(interval)
