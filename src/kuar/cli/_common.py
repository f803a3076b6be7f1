"""Shared CLI plumbing: one readable error line and a non-zero exit for expected failures."""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import click

from kuar.client import ApiError, ConfigError, ManifestError, TransportError
from kuar.testing import AssetsError, StartError

P = ParamSpec("P")
R = TypeVar("R")

EXPECTED = (ApiError, ConfigError, ManifestError, TransportError, AssetsError, StartError,
            TimeoutError, OSError)


def fail(message: str) -> None:
    """Print ``error: message`` to stderr and exit 1."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn the failures a user can cause or fix into one ``error:`` line and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except EXPECTED as exc:
            fail(str(exc))
            raise AssertionError("unreachable") from exc

    return wrapper


class StopSignal:
    """Turns SIGINT/SIGTERM into an event; the first signal during start aborts the start."""

    def __init__(self) -> None:
        """Install the handlers."""
        self.event = threading.Event()
        self.starting = True
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        self.event.set()
        if self.starting:
            raise KeyboardInterrupt(signal.Signals(signum).name)
