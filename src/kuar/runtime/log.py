"""Structured reconcile logs: every record carries the controller, object key and reconcile id.

Place in the pipeline: the controller sets :data:`reconcile_context` around each reconcile;
:class:`ReconcileContextFilter` copies it onto every log record emitted meanwhile (by kuar or
by the reconciler's own loggers), as ``record.controller``, ``record.key`` and
``record.reconcile_id``. Known as the ``logr`` values ``controller``, ``namespace``, ``name``
and ``reconcileID`` in controller-runtime.

Use: ``handler.addFilter(ReconcileContextFilter())`` and a format such as
``"%(levelname)s %(name)s %(controller)s %(key)s %(reconcile_id)s %(message)s"``, or a JSON
formatter that emits record attributes.

Reconcile ids (:func:`new_reconcile_id`) are UUID-shaped strings, unique in the process and,
with 74 random bits per process, across processes and restarts: a random per-process prefix
and a counter (a UUIDv8 of RFC 9562, whose layout is the application's). controller-runtime
draws a random UUIDv4 per reconcile; kuar counts instead because ``str(uuid.uuid4())`` costs
~2-3 µs (an ``os.urandom`` call and the UUID object), about a tenth of the runtime's own
work per reconcile (docs/decisions/0026-reconcile-overhead.md).
"""

from __future__ import annotations

import itertools
import logging
import os
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReconcileContext:
    """Which reconcile is running in the current task."""

    controller: str
    key: str
    reconcile_id: str


reconcile_context: ContextVar[ReconcileContext | None] = ContextVar(
    "kuar_reconcile_context", default=None
)
"""The reconcile running in the current asyncio task (``None`` outside reconciles)."""


class ReconcileContextFilter(logging.Filter):
    """Adds ``controller``, ``key`` and ``reconcile_id`` to each record ("" outside reconciles)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate ``record``; never drops it."""
        ctx = reconcile_context.get()
        if not hasattr(record, "reconcile_id"):
            record.controller = ctx.controller if ctx else ""
            record.key = ctx.key if ctx else ""
            record.reconcile_id = ctx.reconcile_id if ctx else ""
        return True


_COUNTER_MASK = (1 << 48) - 1


def _prefix() -> str:
    """``xxxxxxxx-xxxx-8xxx-yxxx-``: 74 random bits, UUID version 8, RFC 9562 variant."""
    bits = int.from_bytes(os.urandom(10), "big")  # 80 bits: 32 + 16 + 12 + 14 used
    a, b = bits >> 48, (bits >> 32) & 0xFFFF
    c, d = (bits >> 20) & 0xFFF, (bits >> 6) & 0x3FFF
    return f"{a:08x}-{b:04x}-8{c:03x}-{0x8000 | d:04x}-"


_id_prefix = _prefix()
_id_counter = itertools.count(1)


def _reseed() -> None:
    """A forked child draws its own prefix (it would repeat its parent's ids otherwise)."""
    global _id_prefix, _id_counter
    _id_prefix, _id_counter = _prefix(), itertools.count(1)


os.register_at_fork(after_in_child=_reseed)


def new_reconcile_id() -> str:
    """A fresh reconcile id: this process's random prefix and the next number (see above)."""
    return f"{_id_prefix}{next(_id_counter) & _COUNTER_MASK:012x}"
