"""The reconcile contract: a request key in, a :class:`Result` out, errors mean retry.

Place in the pipeline: the last stage. The controller's workers take a :data:`Request` from
the workqueue and await the reconciler with it. Known as ``reconcile.Reconciler`` in
controller-runtime and the ``reconcile`` function + ``Action`` in kube-rs.

The contract (level-based):
- A reconciler gets only the key of an object. It reads the current state (normally from an
  informer's store), makes the world match it, and returns :meth:`Result.done` (or ``None``),
  or :meth:`Result.requeue` to be called again after ``after`` seconds (or with backoff).
- Raising any exception means "failed, retry": the key comes back with per-key exponential
  backoff (5 ms doubling to 1000 s by default) until a call succeeds, which resets it.
  A 429 from the API server waits at least its ``Retry-After``.
- Raising :class:`TerminalError` means "failed, do not retry": the error is logged and
  counted (``controller_runtime_terminal_reconcile_errors_total``); the key runs again only
  when a new event arrives for it.
- The same key never runs twice at once; different keys run concurrently up to the
  controller's ``max_concurrent_reconciles``. No reconcile runs before the caches the
  controller watches have synced.
Reconcilers must be idempotent: a key can be reconciled again at any time (resync, restart,
relist), and several events for one key may be merged into one call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kuar.runtime.objects import ObjectKey

Request = ObjectKey
"""What a reconciler is asked to reconcile: the namespace and name of an object."""


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of a successful reconcile; build it with :meth:`done` or :meth:`requeue`."""

    requeue_after: float | None = None
    """Seconds after which to reconcile the key again (``None``: only on the next event)."""
    rate_limited: bool = False
    """Requeue with the key's backoff instead of a fixed delay."""

    @classmethod
    def done(cls) -> Result:
        """Nothing more to do until something changes."""
        return _DONE

    @classmethod
    def requeue(cls, after: float | None = None) -> Result:
        """Reconcile again after ``after`` seconds, or with the key's backoff when ``None``.

        A fixed delay resets the key's backoff (the reconcile did succeed); use it to poll
        something the controller does not watch.
        """
        if after is None:
            return cls(rate_limited=True)
        if after < 0:
            raise ValueError("after must be >= 0")
        return cls(requeue_after=float(after))


_DONE = Result()


class TerminalError(Exception):
    """A reconcile failure that retrying cannot fix (invalid spec, missing permission...).

    Recorded (log, metric) and not retried; the object is reconciled again on its next event.
    """


Reconciler = Callable[[Request], Awaitable[Result | None]]
"""An async function from a :data:`Request` to a :class:`Result` (``None`` means done)."""
