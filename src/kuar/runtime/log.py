"""Structured reconcile logs: every record carries the controller, object key and reconcile id.

Place in the pipeline: the controller sets :data:`reconcile_context` around each reconcile;
:class:`ReconcileContextFilter` copies it onto every log record emitted meanwhile (by kuar or
by the reconciler's own loggers), as ``record.controller``, ``record.key`` and
``record.reconcile_id``. Known as the ``logr`` values ``controller``, ``namespace``, ``name``
and ``reconcileID`` in controller-runtime.

Use: ``handler.addFilter(ReconcileContextFilter())`` and a format such as
``"%(levelname)s %(name)s %(controller)s %(key)s %(reconcile_id)s %(message)s"``, or a JSON
formatter that emits record attributes.
"""

from __future__ import annotations

import logging
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
