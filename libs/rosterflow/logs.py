"""Structured logs: one JSON object a line, with the service's name.

Every line a consumer writes while it handles an event carries the event's
``job_id``, ``event_id`` and ``stage`` (``log_context``), so one job can be
followed across every service by its id. Nothing personal reaches a log
line: exceptions are logged as their type and stack, never their message
(a database error quotes the row it failed on), and the access log drops
query strings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import traceback
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else was passed in ``extra``.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

_CONTEXT: ContextVar[dict[str, Any]] = ContextVar("rosterflow_log_context", default={})  # noqa: B039


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add these fields to every log line written inside the block (this task only)."""
    token = _CONTEXT.set({**_CONTEXT.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def _exception_without_message(exc_info: Any) -> str:
    """The exception's type and stack; its message may quote personal data."""
    exc_type, exc, tb = exc_info
    lines = ["Traceback (most recent call last):\n", *traceback.format_tb(tb)]
    lines.append(f"{exc_type.__name__ if exc_type else 'Exception'} (message withheld)")
    cause = getattr(exc, "__cause__", None)
    if cause is not None:
        lines.append(f"\ncaused by {type(cause).__name__}")
    return "".join(lines)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_CONTEXT.get())
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = _exception_without_message(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _AccessWithoutQuery(logging.Filter):
    """uvicorn's access line without the query string (it holds file names)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


def configure_logging(service: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _AccessWithoutQuery) for f in access.filters):
        access.addFilter(_AccessWithoutQuery())
