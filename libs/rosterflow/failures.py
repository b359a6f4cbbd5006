"""What a failure may say about itself, wherever it is written down.

A job's error, a ``JobFinished``, a dead letter and a log line are read by
administrators and operators, and some are kept for years. An exception's
own text is none of theirs: a database error quotes the row it failed on
(asyncpg appends PostgreSQL's DETAIL, which can hold an identity number and
a name), a storage error the key and the server's answer, a validation error
the value. So every failure is written as a code and a message of our own,
built from the exception's *type* (and, for the database, its SQLSTATE),
never from ``str(exc)``; and every message is bounded. A handler that
knows why a job cannot go on says so the same way: ``PermanentError``.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

# Longest message kept in a job, an event or a dead letter. A message is read
# by a person; a longer one is a bug or someone else's text.
MAX_MESSAGE_CHARS = 2000


def bounded(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """The text cut to ``limit`` characters, marked when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


@dataclass(frozen=True)
class Failure:
    """A failure as it may be written down: a code and a message of our own."""

    code: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", bounded(self.message))


def describe(exc: BaseException) -> Failure:
    """The failure ``exc`` stands for, without a word of its own text."""
    name = type(exc).__name__
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or "unknown"
        return Failure(
            "database_error",
            f"The database refused a step of the job ({name}, SQLSTATE {sqlstate}).",
        )
    if isinstance(exc, MemoryError):
        return Failure("out_of_memory", "The job needed more memory than the service has.")
    if isinstance(exc, TimeoutError):
        return Failure("timed_out", f"A step of the job did not finish in time ({name}).")
    return Failure("internal_error", f"An internal error ({name}) stopped the job.")


class PermanentError(Exception):
    """The job cannot go on, whatever the retries; it ends *failed* with this code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
