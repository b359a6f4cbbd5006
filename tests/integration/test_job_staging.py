"""A large job's rows staged once: the plan's own table, the importer applying from
it, the fall-back to the report when it is gone, and its clean-up however the job ends.

"Large" is ``imports.stage_once_rows``, set to 10 rows here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from uuid import UUID, uuid4

import asyncpg
import pytest

from rosterflow import db, events, journal
from rosterflow.jobs import JobState
from rosterflow.settings import Settings
from rosterflow.testing import School, sample_roster, school_age_numbers, seed_active_patients
from rosterflow.testing import seed_school as seed
from services.ingest import commands
from tests.integration.pipeline import Pipeline, final_job, new_admin, pipeline
from tests.integration.test_staging import _rows

ADMIN = new_admin()
ROWS = 30


@pytest.fixture
def large(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"imports": settings.imports.model_copy(update={"stage_once_rows": 10})}
    )


async def validated(p: Pipeline, school: School, first: int = 0) -> UUID:
    """Upload a roster of ROWS valid rows and wait for its plan."""
    roster = sample_roster(ROWS, school_age_numbers()[first:])
    upload = await p.upload(school, roster.to_csv().encode())
    checked = await p.tap.next(events.JobValidated, upload.job_id)
    assert checked.counts.valid == ROWS
    return upload.job_id


async def confirm(p: Pipeline, job_id: UUID) -> events.JobFinished:
    await p.any.publisher.publish(events.ConfirmationRequested(job_id=job_id, requested_by=ADMIN))
    finished = await p.tap.next(events.JobFinished, job_id)
    assert isinstance(finished, events.JobFinished)
    return finished


async def test_the_importer_applies_the_plans_rows_to_the_journal_as_it_is_at_apply_time(
    large: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed(conn)
    async with pipeline(large) as p:
        job_id = await validated(p, school)
        job = await final_job(conn, job_id)
        assert job.check_result is not None
        assert job.check_result["staged_rows"] == ROWS
        assert job.check_result["plan"]["create"] == ROWS
        assert await journal.job_table_rows(conn, job_id) == ROWS
        # The importer cannot stage from the report: it is gone.
        p.any.store.delete(job.check_result["report"]["valid_rows_key"])
        # Between plan and confirmation, 5 of the students joined the unit.
        await seed_active_patients(conn, school, school_age_numbers()[:5])
        finished = await confirm(p, job_id)
    assert finished.outcome is events.Outcome.COMPLETED
    assert finished.imported is not None
    # Against the journal at apply time, not the plan's: 25 new, 5 changed.
    assert (finished.imported.created, finished.imported.updated) == (ROWS - 5, 5)
    assert await conn.fetchval("SELECT count(*) FROM patients") == ROWS
    assert await journal.job_table_rows(conn, job_id) is None


@pytest.mark.parametrize("loss", ["TRUNCATE", "DROP TABLE"])
async def test_without_the_plans_rows_the_importer_stages_the_report_again(
    large: Settings, conn: asyncpg.Connection, loss: str
) -> None:
    school = await seed(conn)
    async with pipeline(large) as p:
        job_id = await validated(p, school)
        # A crash of PostgreSQL leaves an UNLOGGED table empty; a sweep drops it.
        await conn.execute(f"{loss} {journal.job_table(job_id)}")
        finished = await confirm(p, job_id)
    assert finished.outcome is events.Outcome.COMPLETED
    assert finished.imported is not None
    assert finished.imported.created == ROWS
    assert await conn.fetchval("SELECT count(*) FROM enrolments") == ROWS
    assert await journal.job_table_rows(conn, job_id) is None


async def _cancel(p: Pipeline, job_id: UUID, school: School) -> None:
    await commands.cancel(p.any, job_id, ADMIN, broadcast=True)


async def _supersede(p: Pipeline, job_id: UUID, school: School) -> None:
    await validated(p, school, first=ROWS)  # a newer file for the same unit and year


async def _fail(p: Pipeline, job_id: UUID, school: School) -> None:
    await p.any.fail_job(job_id, "dead_lettered", "a message could not be processed")


@pytest.mark.parametrize(
    ("end", "outcome"),
    [
        (_cancel, events.Outcome.CANCELLED),
        (_supersede, events.Outcome.CANCELLED),
        (_fail, events.Outcome.FAILED),
    ],
    ids=["cancelled", "superseded", "failed"],
)
async def test_a_job_that_ends_unimported_drops_its_table(
    large: Settings,
    conn: asyncpg.Connection,
    end: Callable[[Pipeline, UUID, School], Awaitable[None]],
    outcome: events.Outcome,
) -> None:
    school = await seed(conn)
    async with pipeline(large) as p:
        job_id = await validated(p, school)
        assert await journal.job_table_rows(conn, job_id) == ROWS
        await end(p, job_id, school)
        finished = await p.tap.next(events.JobFinished, job_id)
    assert finished.outcome is outcome
    assert await journal.job_table_rows(conn, job_id) is None


async def test_the_sweep_drops_ended_and_overdue_plans_only(
    large: Settings, conn: asyncpg.Connection
) -> None:
    schools = [await seed(conn) for _ in range(3)]
    # No importer: a confirmed job stays importing.
    async with pipeline(large, "ingest", "validator", "notifier") as p:
        waiting = await validated(p, schools[0])
        importing = await validated(p, schools[1], first=ROWS)
        await commands.confirm(p.any, importing, ADMIN)
        ended = await validated(p, schools[2], first=2 * ROWS)
        await commands.cancel(p.any, ended, ADMIN, broadcast=True)
        await p.tap.next(events.JobFinished, ended)
        # A table an ending left behind (say, its drop failed).
        await conn.execute(f"CREATE UNLOGGED TABLE {journal.job_table(ended)} (n int)")

        assert await journal.sweep_job_tables(conn, kept_seconds=3600) == 1
        assert await journal.job_table_rows(conn, ended) is None
        assert await journal.job_table_rows(conn, waiting) == ROWS
        # Kept for no time at all: the plan awaiting confirmation loses its table,
        # the job being imported keeps it.
        assert await journal.sweep_job_tables(conn, kept_seconds=0) == 1
        assert await journal.job_table_rows(conn, waiting) is None
        assert await journal.job_table_rows(conn, importing) == ROWS
        assert (await final_job(conn, importing)).state is JobState.IMPORTING

    # Confirmed after the sweep: staged from the report, imported all the same.
    async with pipeline(large) as p:
        finished = await confirm(p, waiting)
    assert finished.outcome is events.Outcome.COMPLETED
    assert finished.imported is not None
    assert finished.imported.created == ROWS


async def test_a_small_plan_leaves_no_table(settings: Settings, conn: asyncpg.Connection) -> None:
    school = await seed(conn)
    async with pipeline(settings) as p:
        job_id = await validated(p, school)  # 30 rows, under the default 10,000
        job = await final_job(conn, job_id)
        assert job.check_result is not None
        assert "staged_rows" not in job.check_result
        assert await journal.job_table_rows(conn, job_id) is None
        finished = await confirm(p, job_id)
    assert finished.outcome is events.Outcome.COMPLETED


async def test_two_plans_of_one_job_at_once_leave_the_second_ones_table(
    database_dsn: str,
) -> None:
    job_id = uuid4()
    first, second = await db.connect(database_dsn), await db.connect(database_dsn)
    try:
        async with journal.staging(first), first.transaction():
            await journal.create_job_table(first, job_id)
            await journal.stage_rows(first, _rows(3))
            await first.execute(f"INSERT INTO {journal.job_table(job_id)} SELECT * FROM staged")

            async def plan_again() -> None:
                async with journal.staging(second), second.transaction():
                    await journal.create_job_table(second, job_id)
                    await second.execute(
                        f"INSERT INTO {journal.job_table(job_id)} SELECT * FROM staged"
                    )

            waiting = asyncio.create_task(plan_again())
            await asyncio.sleep(0.3)
            assert not waiting.done()  # waits for the first plan's commit
        await waiting
        assert await journal.job_table_rows(first, job_id) == 0  # the second's (empty) table
    finally:
        await first.close()
        await second.close()
