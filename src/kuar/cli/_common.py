"""Shared CLI plumbing: one ``error:`` line for every failure, and signal handling.

Place in the pipeline: used by every ``kuar`` command (:mod:`kuar.cli.main` makes the ``kuar``
group a :class:`KuarGroup`). A command reports an expected failure by raising
:class:`click.ClickException` (or calling :func:`fail`, or through :func:`friendly_errors`);
application plugins (``kuar loadtest``, ``kuar demo``) do the same without importing this
module. :class:`KuarGroup` prints each such failure as one lower-case ``error: ...`` line
(usage errors after the usage line), as kubectl does, instead of click's ``Error:``.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, ParamSpec, TypeVar

import click

from kuar.client import ApiError, ConfigError, ManifestError, TransportError
from kuar.testing import AssetsError, StartError

P = ParamSpec("P")
R = TypeVar("R")

EXPECTED = (ApiError, ConfigError, ManifestError, TransportError, AssetsError, StartError,
            TimeoutError, OSError)


def fail(message: str) -> NoReturn:
    """Stop the command with ``error: message`` on stderr and exit code 1."""
    raise click.ClickException(message)


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn the failures a user can cause or fix into one ``error:`` line and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except EXPECTED as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def show_error(exc: click.ClickException) -> None:
    """Print ``exc`` the kuar way: the usage line first for usage errors, then ``error: ...``."""
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        click.echo(f"{exc.ctx.get_usage()}\nTry '{exc.ctx.command_path} --help' for help.\n",
                   err=True)
    click.echo(f"error: {exc.format_message()}", err=True)


class KuarGroup(click.Group):
    """A click group whose failures print as one ``error:`` line (see the module docstring).

    Exit codes stay click's: 2 for usage errors, the exception's code (1) otherwise.
    """

    def main(
        self, args: Sequence[str] | None = None, prog_name: str | None = None,
        complete_var: str | None = None, standalone_mode: bool = True, **extra: Any,
    ) -> Any:
        """Run the command; handle click's exceptions here instead of in click."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            show_error(exc)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)


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
