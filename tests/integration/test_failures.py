"""A failure is written down as a code and a message of our own: no personal data.

A database error's text quotes the row it failed on (PostgreSQL's DETAIL, which
asyncpg appends to the message); neither the dead letter, nor the job's error,
nor the JobFinished the platform receives, nor a log line may carry it.
"""

from __future__ import annotations

import asyncpg
import pytest

from rosterflow import events, jobs
from rosterflow.failures import MAX_MESSAGE_CHARS, Failure, bounded, describe
from rosterflow.logs import JsonFormatter
from rosterflow.runtime import Runtime
from rosterflow.settings import Settings
from rosterflow.testing import running, school_age_numbers, seed_school, wait_for
from tests.support.pipeline import pipeline

NAME = "Tolvan Tolvansson"


async def test_a_database_error_quoting_a_row_reaches_no_letter_job_event_or_log(
    settings: Settings, conn: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    number = school_age_numbers()[0]
    school = await seed_school(conn)
    leaked: list[str] = []

    async def quotes_the_row(event: events.JobAccepted) -> None:
        async with probe.pool.acquire() as db:
            await db.execute("CREATE TEMP TABLE people (pnr text PRIMARY KEY, name text)")
            await db.execute("INSERT INTO people VALUES ($1, $2)", number, NAME)
            try:
                # A unique violation: its DETAIL names the key, i.e. the identity number.
                await db.execute("INSERT INTO people VALUES ($1, $2)", number, NAME)
            except asyncpg.UniqueViolationError as exc:
                leaked.append(str(exc))
                raise

    probe = Runtime(settings, "probe")
    probe.consumer.handle(events.JobAccepted, quotes_the_row)
    formatter = JsonFormatter("probe")
    async with pipeline(settings, "ingest") as p, running(probe):
        upload = await p.upload(school, b"Personnummer;F\xc3\xb6rnamn;Efternamn\r\n")
        finished = await p.tap.next(events.JobFinished, upload.job_id)

        async def letter() -> events.DeadLetter | None:
            found = p.tap.of(events.DeadLetter, upload.job_id)
            return found[0] if found else None

        dead = await wait_for(letter, what="the dead letter")
    # The exception did quote the row: what follows is a real test.
    assert number in leaked[0]
    job = await jobs.get(conn, upload.job_id)
    assert job is not None
    assert job.state is jobs.JobState.FAILED
    assert finished.outcome is events.Outcome.FAILED
    written = [
        dead.reason,
        job.error_message or "",
        finished.error_message or "",
        *(formatter.format(r) for r in caplog.records),
    ]
    for text in written:
        assert number not in text
        assert NAME not in text
    assert "UniqueViolationError" in dead.reason
    assert "SQLSTATE 23505" in dead.reason
    assert finished.error_code == "unprocessable_event"


def test_every_failure_has_a_code_and_a_bounded_message_of_its_own() -> None:
    secret = "19121212-1212 Tolvan"
    for exc in (
        asyncpg.UniqueViolationError(secret),
        MemoryError(secret),
        TimeoutError(secret),
        KeyError(secret),
        ValueError(secret * 1000),
    ):
        failure = describe(exc)
        assert failure.code
        assert secret not in failure.message
        assert len(failure.message) <= MAX_MESSAGE_CHARS
    assert len(Failure("x", "y" * 10_000).message) == MAX_MESSAGE_CHARS
    assert bounded("short") == "short"
