"""A large job's rows staged once: the plan's own table, the importer applying from
it, the fall-back to the report when it is gone, and its clean-up however the job ends.

The rows are COPYed into the job's table while the file is being checked
(``plan.JobRowsFeed``): the table must end with exactly the report's valid
rows however the check went, and exist only once the plan committed.

"Large" is ``imports.stage_once_rows``, set to 10 rows here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast
from uuid import UUID, uuid4

import asyncpg
import pytest

from rosterflow import db, events
from rosterflow.jobs import Job, JobState, Staging, StagingPlan
from rosterflow.journal import job_tables, staging
from rosterflow.settings import Settings
from rosterflow.storage import report_keys
from rosterflow.testing import (
    School,
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    wait_for,
)
from rosterflow.testing import seed_school as seed
from services.ingest import commands
from services.validator import plan, reading
from tests.support.gates import GatedStorage
from tests.support.pipeline import Pipeline, final_job, new_admin, pipeline
from tests.support.staging import staged_rows

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
        assert job.check_result.staging == StagingPlan(size=Staging.LARGE, rows=ROWS)
        assert job.check_result.plan.create == ROWS
        assert await job_tables.job_table_rows(conn, job_id) == ROWS
        # The importer cannot stage from the report: it is gone.
        p.any.store.delete(job.check_result.report.valid_rows_key)
        # Between plan and confirmation, 5 of the students joined the unit.
        await seed_active_patients(conn, school, school_age_numbers()[:5])
        finished = await confirm(p, job_id)
    assert finished.outcome is events.Outcome.COMPLETED
    assert finished.imported is not None
    # Against the journal at apply time, not the plan's: 25 new, 5 changed.
    assert (finished.imported.created, finished.imported.updated) == (ROWS - 5, 5)
    assert await conn.fetchval("SELECT count(*) FROM patients") == ROWS
    assert await job_tables.job_table_rows(conn, job_id) is None


@pytest.mark.parametrize("loss", ["TRUNCATE", "DROP TABLE"])
async def test_without_the_plans_rows_the_importer_stages_the_report_again(
    large: Settings, conn: asyncpg.Connection, loss: str
) -> None:
    school = await seed(conn)
    async with pipeline(large) as p:
        job_id = await validated(p, school)
        # A crash of PostgreSQL leaves an UNLOGGED table empty; a sweep drops it.
        await conn.execute(f"{loss} {job_tables.job_table(job_id)}")
        finished = await confirm(p, job_id)
    assert finished.outcome is events.Outcome.COMPLETED
    assert finished.imported is not None
    assert finished.imported.created == ROWS
    assert await conn.fetchval("SELECT count(*) FROM enrolments") == ROWS
    assert await job_tables.job_table_rows(conn, job_id) is None


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
        assert await job_tables.job_table_rows(conn, job_id) == ROWS
        await end(p, job_id, school)
        finished = await p.tap.next(events.JobFinished, job_id)
    assert finished.outcome is outcome
    assert await job_tables.job_table_rows(conn, job_id) is None


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
        await conn.execute(f"CREATE UNLOGGED TABLE {job_tables.job_table(ended)} (n int)")

        assert await job_tables.sweep_job_tables(conn, kept_seconds=3600) == 1
        assert await job_tables.job_table_rows(conn, ended) is None
        assert await job_tables.job_table_rows(conn, waiting) == ROWS
        # Kept for no time at all: the plan awaiting confirmation loses its table,
        # the job being imported keeps it.
        assert await job_tables.sweep_job_tables(conn, kept_seconds=0) == 1
        assert await job_tables.job_table_rows(conn, waiting) is None
        assert await job_tables.job_table_rows(conn, importing) == ROWS
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
        assert job.check_result.staging == StagingPlan(size=Staging.SMALL, rows=30)
        assert await job_tables.job_table_rows(conn, job_id) is None
        finished = await confirm(p, job_id)
    assert finished.outcome is events.Outcome.COMPLETED


async def waiting_on_a_lock(observer: asyncpg.Connection, pid: int | None = None) -> bool:
    """Whether a backend of this database (``pid``, or any) is blocked on a lock."""
    return bool(
        await observer.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND ($1::int IS NULL OR pid = $1)",
            pid,
        )
    )


async def test_two_plans_of_one_job_at_once_leave_the_second_ones_table(
    database_dsn: str,
) -> None:
    job_id = uuid4()
    first, second = await db.connect(database_dsn), await db.connect(database_dsn)
    try:
        async with staging.staging(first), first.transaction():
            await job_tables.create_job_table(first, job_id)
            await staging.stage_rows(first, staged_rows(3))
            await first.execute(f"INSERT INTO {job_tables.job_table(job_id)} SELECT * FROM staged")

            async def plan_again() -> None:
                async with staging.staging(second), second.transaction():
                    await job_tables.create_job_table(second, job_id)
                    await second.execute(
                        f"INSERT INTO {job_tables.job_table(job_id)} SELECT * FROM staged"
                    )

            waiting = asyncio.create_task(plan_again())
            await wait_for(
                lambda: waiting_on_a_lock(first, second.get_server_pid()),
                within=10,
                what="the second plan waiting for the first plan's commit",
            )
            assert not waiting.done()
        await waiting
        assert await job_tables.job_table_rows(first, job_id) == 0  # the second's (empty) table
    finally:
        await first.close()
        await second.close()


# --- the rows staged while the file is checked ----------------------------------------

NUMBERS = school_age_numbers()
# Small blocks, so that a file of a few thousand rows is read in many chunks
# (the reader works up to 32 blocks ahead of the check).
BLOCK = 4096


def many_rows(count: int) -> list[str]:
    return [
        f"{number};Namn{i};Efternamn;5;5A;elev{i}@skolan.se;070-1234567"
        for i, number in enumerate(NUMBERS[:count])
    ]


def roster_file(rows: list[str]) -> bytes:
    header = "Personnummer;Förnamn;Efternamn;Årskurs;Klass;E-post;Telefon"
    return ("\r\n".join([header, *rows]) + "\r\n").encode()


class Spy:
    """Counts the calls of a job_tables function, which still runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.calls = 0
        real = getattr(job_tables, name)

        async def spied(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return await real(*args, **kwargs)

        monkeypatch.setattr(job_tables, name, spied)


async def table_identities(conn: asyncpg.Connection, job_id: UUID) -> list[str]:
    rows = await conn.fetch(f"SELECT identity_number FROM {job_tables.job_table(job_id)}")
    return sorted(r["identity_number"] for r in rows)


def report_identities(p: Pipeline, school: School, job_id: UUID) -> list[str]:
    valid_key, _ = report_keys(school.organisation_id, job_id)
    column = p.any.store.parquet_file(valid_key).read(columns=["identity_number"]).column(0)
    return sorted(column.to_pylist())


async def test_rows_staged_during_the_check_are_seen_only_once_the_plan_commits(
    large: Settings, conn: asyncpg.Connection
) -> None:
    async with pipeline(large, "validator") as p:
        rt = p.runtimes["validator"]
        job = cast(Job, SimpleNamespace(id=uuid4()))

        async def failing_check() -> None:
            async with plan.JobRowsFeed(rt, job) as feed:
                await asyncio.to_thread(feed.rows, staged_rows(20))

                async def copied() -> bool:
                    return feed.staged == 20

                await wait_for(copied, what="the rows copied")
                # Copied, but uncommitted: nobody else sees the table.
                assert await job_tables.job_table_rows(conn, job.id) is None
                raise RuntimeError("the check failed")

        with pytest.raises(RuntimeError, match="the check failed"):
            await failing_check()
        assert await job_tables.job_table_rows(conn, job.id) is None

        async with plan.JobRowsFeed(rt, job) as feed:
            await asyncio.to_thread(feed.rows, staged_rows(5))  # under the threshold: only kept
            assert feed.staged == 0
            await asyncio.to_thread(feed.rows, staged_rows(20))
            assert await feed.finish() is not None
            assert feed.staged == 25
            assert await job_tables.job_table_rows(conn, job.id) is None
            await feed.commit()
        assert await job_tables.job_table_rows(conn, job.id) == 25
        # Read once and dropped: no autovacuum worker spends itself on it.
        options = await conn.fetchval(
            "SELECT reloptions FROM pg_class WHERE oid = to_regclass($1)",
            job_tables.job_table(job.id),
        )
        assert "autovacuum_enabled=false" in options

        async with plan.JobRowsFeed(rt, cast(Job, SimpleNamespace(id=uuid4()))) as small:
            await asyncio.to_thread(small.rows, staged_rows(9))
            assert await small.finish() is None  # never reached the threshold: no table


async def test_a_validator_that_dies_mid_check_leaves_no_table(
    large: Settings, conn: asyncpg.Connection
) -> None:
    # What PostgreSQL sees of a killed validator: the session that is copying
    # the rows goes away in the middle of its transaction.
    async with pipeline(large, "validator") as p:
        rt = p.runtimes["validator"]
        job = cast(Job, SimpleNamespace(id=uuid4()))
        dying = plan.JobRowsFeed(rt, job)
        await asyncio.to_thread(dying.rows, staged_rows(20))

        async def copied() -> bool:
            return dying.staged == 20

        await wait_for(copied, what="the rows copied")
        (copying,) = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
        )
        assert await conn.fetchval("SELECT pg_terminate_backend($1, 10000)", copying["pid"])
        assert await job_tables.job_table_rows(conn, job.id) is None
        # Were its process alive, leaving the feed would raise a transient
        # error (the handler retries the job), not the staging's own.
        with pytest.raises(asyncpg.InterfaceError, match="connection is closed"):
            await dying.__aexit__(None, None, None)

        # The job's redelivery checks it again: no lock or table is left in its way.
        async with plan.JobRowsFeed(rt, job) as again:
            await asyncio.to_thread(again.rows, staged_rows(20))
            assert await again.finish() is not None
            await again.commit()
        assert await job_tables.job_table_rows(conn, job.id) == 20


async def test_a_check_that_starts_over_starts_the_table_over(
    large: Settings,
    conn: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(reading, "BLOCK_BYTES", BLOCK)
    emptied = Spy(monkeypatch, "empty_job_table")
    copied = Spy(monkeypatch, "copy_job_rows")
    # A row with a field too many near the end: the fast reader gives up on
    # it after many chunks were checked, and the file is read again.
    rows = many_rows(4000)
    rows.insert(3900, f"{NUMBERS[5000]};Namn;Efternamn;5;5A;x@skolan.se;070-1234567;extra")
    school = await seed(conn)
    with caplog.at_level(logging.WARNING):
        async with pipeline(large) as p:
            upload = await p.upload(school, roster_file(rows))
            checked = await p.tap.next(events.JobValidated, upload.job_id)
            job = await final_job(conn, upload.job_id)
            assert job.check_result is not None
            assert emptied.calls == 1  # started over once, the table with it
            assert copied.calls > 2
            assert checked.counts.valid == 4000
            assert job.check_result.staging == StagingPlan(size=Staging.LARGE, rows=4000)
            assert await table_identities(conn, upload.job_id) == report_identities(
                p, school, upload.job_id
            )
            finished = await confirm(p, upload.job_id)
    assert not [r for r in caplog.records if "differ from the report" in r.getMessage()]
    assert finished.imported is not None
    assert finished.imported.created == 4000


async def test_duplicates_found_at_the_end_leave_the_table_as_the_report(
    large: Settings, conn: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    rows = many_rows(30)
    rows.append(rows[3])  # an exact copy: imported once
    rows.append(rows[5].replace("Namn5", "Annan"))  # a conflict: neither is imported
    school = await seed(conn)
    with caplog.at_level(logging.WARNING):
        async with pipeline(large) as p:
            upload = await p.upload(school, roster_file(rows))
            checked = await p.tap.next(events.JobValidated, upload.job_id)
            assert checked.counts.valid == 29
            job = await final_job(conn, upload.job_id)
            assert job.check_result is not None
            assert job.check_result.staging == StagingPlan(size=Staging.LARGE, rows=29)
            staged = await table_identities(conn, upload.job_id)
            assert staged == report_identities(p, school, upload.job_id)
            assert NUMBERS[5] not in staged
            assert staged.count(NUMBERS[3]) == 1
            finished = await confirm(p, upload.job_id)
    assert not [r for r in caplog.records if "differ from the report" in r.getMessage()]
    assert finished.imported is not None
    assert finished.imported.created == 29
    assert await job_tables.job_table_rows(conn, upload.job_id) is None


async def test_a_file_rejected_mid_check_leaves_no_table(
    large: Settings, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "BLOCK_BYTES", BLOCK)
    created = Spy(monkeypatch, "create_job_table")
    limited = large.model_copy(
        update={"imports": large.imports.model_copy(update={"max_rows": 3000})}
    )
    school = await seed(conn)
    async with pipeline(limited) as p:
        upload = await p.upload(school, roster_file(many_rows(4000)))
        finished = await p.tap.next(events.JobFinished, upload.job_id)
    assert finished.outcome is events.Outcome.FAILED
    assert (await final_job(conn, upload.job_id)).error_code == "file_too_many_rows"
    assert created.calls == 1  # the table was begun before the check gave up
    assert await job_tables.job_table_rows(conn, upload.job_id) is None


async def test_a_cancel_mid_check_leaves_no_table(
    large: Settings, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "BLOCK_BYTES", BLOCK)
    copied = Spy(monkeypatch, "copy_job_rows")
    gated = GatedStorage(gate=200_000)  # of about 280 kB
    school = await seed(conn)
    async with pipeline(large) as p:
        validator = p.runtimes["validator"]
        gated.install(validator, monkeypatch)
        upload = await p.upload(school, roster_file(many_rows(4000)))

        async def stalled() -> bool:
            return gated.waiting.is_set() and copied.calls > 0

        await wait_for(stalled, what="rows staged and the reading stopped at the gate")
        await commands.cancel(p.any, upload.job_id, ADMIN, broadcast=True)
        finished = await p.tap.next(events.JobFinished, upload.job_id, within=60)
    assert finished.outcome is events.Outcome.CANCELLED
    assert (await final_job(conn, upload.job_id)).validation_finished_at is None
    assert await job_tables.job_table_rows(conn, upload.job_id) is None


async def test_two_checks_of_one_job_at_once_leave_the_second_ones_rows(
    large: Settings, conn: asyncpg.Connection
) -> None:
    # A partition handed over mid-check: the second validator's rows wait for
    # the first's plan to commit, then replace its table.
    async with pipeline(large, "validator") as p:
        rt = p.runtimes["validator"]
        job = cast(Job, SimpleNamespace(id=uuid4()))
        async with plan.JobRowsFeed(rt, job) as first:
            await asyncio.to_thread(first.rows, staged_rows(20))
            assert await first.finish() is not None
            second = plan.JobRowsFeed(rt, job)
            await asyncio.to_thread(second.rows, staged_rows(30))
            finishing = asyncio.create_task(second.finish())
            await wait_for(
                lambda: waiting_on_a_lock(conn),
                within=10,
                what="the second check's rows waiting for the first plan's commit",
            )
            assert not finishing.done()
            await first.commit()
        async with second:
            assert await finishing is not None
            assert second.staged == 30
            await second.commit()
        assert await job_tables.job_table_rows(conn, job.id) == 30
