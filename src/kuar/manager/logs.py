"""Process logging for an operator: one handler on stderr, text or JSON, from the first line.

Place in the pipeline: the first call of an operator's entry point (``kuar loadtest run``),
before any client, manager or server exists, so every record of the process (kuar's, the
application's, aiohttp's) goes through the one handler set here. Known as the ``--zap-*``
flags of controller-runtime's ``zap.Options`` (``--zap-encoder json|console``,
``--zap-log-level``).

Guarantees: records go to stderr only (stdout stays free for a program's output); JSON mode
writes one object per line with ``ts`` (RFC 3339, UTC), ``level``, ``logger``, ``msg``, the
reconcile context (``controller``, ``key``, ``reconcileID``) when set, ``error`` with the
traceback of an exception, and any ``extra=`` fields a caller passes. Calling
:func:`configure_logging` again replaces the handler instead of adding a second one.
Caveats: secrets are kept out by the callers (kuar never logs tokens, keys or certificates'
private parts); this module does not scrub messages.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, Literal, TextIO

from kuar.runtime.log import ReconcileContextFilter

LogFormat = Literal["text", "json"]
LEVELS = ("debug", "info", "warning", "error")

_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {
    "message", "asctime", "taskName", "controller", "key", "reconcile_id"}
_MARK = "_kuar_process_handler"


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        """Encode ``record`` as one line of JSON."""
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for attr, name in (("controller", "controller"), ("key", "key"),
                           ("reconcile_id", "reconcileID")):
            value = getattr(record, attr, "")
            if value:
                out[name] = value
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                out[name] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(
    fmt: LogFormat = "text", level: str = "info", *, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record of the process to stderr (or ``stream``) in ``fmt`` at ``level``.

    Raises :class:`ValueError` for an unknown format or level (a CLI turns it into an
    ``error:`` line). Returns the handler (tests read or remove it).
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be text or json, got {fmt!r}")
    if level.lower() not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(ReconcileContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    setattr(handler, _MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's access log would print one line per probe and per webhook call
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return handler
