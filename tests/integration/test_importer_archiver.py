"""Importer and archiver semantics against the real PostgreSQL and Kafka."""

from __future__ import annotations

import signal
from pathlib import Path
from uuid import UUID

import asyncpg

from rosterflow import events
from rosterflow.jobs import JobState
from rosterflow.journal import merge
from rosterflow.launcher import service_processes
from rosterflow.settings import Settings
from rosterflow.testing import (
    Roster,
    School,
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    seed_school,
    wait_for,
)
from services.ingest import commands
from tests.support.pipeline import Pipeline, final_job, new_admin, pipeline

ADMIN = new_admin()
# The import's write to patients, waiting on a test's lock: the staged apply's
# INSERT, or a small set's one statement, whose text the activity view cuts
# (track_activity_query_size) before its INSERT.
WAITING_IMPORT = """
SELECT pid FROM pg_stat_activity
 WHERE datname = current_database() AND wait_event_type = 'Lock'
   AND (query LIKE '%INSERT INTO patients%' OR starts_with(query, $1))
"""


async def confirmed(
    p: Pipeline, school: School, roster: Roster, *, archive_missing: bool = False
) -> UUID:
    """Upload, wait for the check, confirm; returns the job id."""
    upload = await p.upload(school, roster.to_csv().encode(), archive_missing=archive_missing)
    await p.tap.next(events.JobValidated, upload.job_id)
    await p.any.publisher.publish(
        events.ConfirmationRequested(job_id=upload.job_id, requested_by=ADMIN)
    )
    return upload.job_id


async def statuses(conn: asyncpg.Connection, school: School) -> dict[str, str]:
    rows = await conn.fetch(
        """SELECT p.identity_number, e.status FROM enrolments e
             JOIN patients p ON p.id = e.patient_id WHERE e.unit_id = $1""",
        school.unit_id,
    )
    return {r["identity_number"]: r["status"] for r in rows}


async def test_a_held_archive_waits_for_approval_then_archives(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    school = await seed_school(conn)
    leavers = numbers[100:110]  # 10 of 30 active would go: over the 10 % threshold
    await seed_active_patients(conn, school, leavers)
    async with pipeline(settings) as p:
        job_id = await confirmed(p, school, sample_roster(20, numbers), archive_missing=True)
        held = await p.tap.next(events.ArchiveHeld, job_id)
        assert (held.archive, held.active, held.hold_ratio) == (10, 30, 0.1)
        job = await final_job(conn, job_id)
        assert job.state is JobState.ARCHIVING
        assert job.awaiting_archive_decision
        assert set((await statuses(conn, school)).values()) == {"active"}

        await p.any.publisher.publish(
            events.ArchiveDecisionRequested(job_id=job_id, approve=True, requested_by=ADMIN)
        )
        finished = await p.tap.next(events.JobFinished, job_id)
    assert finished.outcome is events.Outcome.COMPLETED
    assert finished.archived == 10
    now = await statuses(conn, school)
    assert [now[n] for n in leavers] == ["archived"] * 10
    archived_by = await conn.fetch(
        "SELECT DISTINCT archived_by_job FROM enrolments WHERE status = 'archived'"
    )
    assert [r["archived_by_job"] for r in archived_by] == [job_id]


async def test_a_declined_archive_completes_without_archiving(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    school = await seed_school(conn)
    await seed_active_patients(conn, school, numbers[100:110])
    async with pipeline(settings) as p:
        job_id = await confirmed(p, school, sample_roster(20, numbers), archive_missing=True)
        await p.tap.next(events.ArchiveHeld, job_id)
        job = await commands.decide_archive(p.any, job_id, False, ADMIN)
        assert job is not None
        assert job.archive_decision == "declined"
        # A second, contrary decision changes nothing.
        again = await commands.decide_archive(p.any, job_id, True, ADMIN)
        assert again is not None
        assert again.archive_decision == "declined"
        finished = await p.tap.next(events.JobFinished, job_id)
    assert finished.outcome is events.Outcome.COMPLETED
    assert finished.archived == 0
    assert finished.error_code == "archive_not_approved"
    assert set((await statuses(conn, school)).values()) == {"active"}


async def test_cancel_while_held_keeps_the_import_and_archives_nobody(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    school = await seed_school(conn)
    await seed_active_patients(conn, school, numbers[100:110])
    async with pipeline(settings) as p:
        job_id = await confirmed(p, school, sample_roster(20, numbers), archive_missing=True)
        await p.tap.next(events.ArchiveHeld, job_id)
        await commands.cancel(p.any, job_id, ADMIN, broadcast=True)
        finished = await p.tap.next(events.JobFinished, job_id)
        late = await commands.decide_archive(p.any, job_id, True, ADMIN)
    assert finished.outcome is events.Outcome.CANCELLED
    assert finished.error_code == "cancelled_after_import"
    assert finished.imported is not None
    assert finished.imported.created == 20
    assert late is not None
    assert late.archive_decision is None
    assert set((await statuses(conn, school)).values()) == {"active"}


async def test_undo_reactivates_exactly_what_the_job_archived(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    school = await seed_school(conn)
    first_leavers, second_leavers = numbers[200:202], numbers[202:204]
    await seed_active_patients(conn, school, first_leavers + second_leavers)
    roster = sample_roster(40, numbers)
    async with pipeline(settings) as p:
        # Job 1 archives all four; job 2 (after re-activating two by file) archives them again.
        first = await confirmed(p, school, roster, archive_missing=True)
        assert (await p.tap.next(events.JobFinished, first)).archived == 4
        with_two = Roster(
            roster.header, [*roster.rows, *([n, "Åter", "Elev", "5", "5A"] for n in second_leavers)]
        )
        second = await confirmed(p, school, with_two, archive_missing=False)
        finished = await p.tap.next(events.JobFinished, second)
        assert finished.imported is not None
        assert finished.imported.reactivated == 2
        third = await confirmed(p, school, roster, archive_missing=True)
        assert (await p.tap.next(events.JobFinished, third)).archived == 2

        undone = await commands.undo_archive(p.any, first, ADMIN)
        assert undone is not None
        assert undone.archive_undone_count == 2
        event = await p.tap.next(events.ArchiveUndone, first)
        assert event.reactivated == 2
        twice = await commands.undo_archive(p.any, first, ADMIN)
        assert twice is not None
        assert twice.archive_undone_count == 2
    now = await statuses(conn, school)
    # Job 1's undo brings back its own two; the two job 3 archived again stay archived.
    assert [now[n] for n in first_leavers] == ["active", "active"]
    assert [now[n] for n in second_leavers] == ["archived", "archived"]


async def test_a_school_year_never_changes_another(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    school = await seed_school(conn)
    roster = sample_roster(10, numbers)
    next_year = Roster(roster.header, [[*r[:3], "9", "9Z"] for r in roster.rows])
    async with pipeline(settings) as p:
        first = await confirmed(p, school, roster)
        await p.tap.next(events.JobFinished, first)
        before = await conn.fetch("SELECT * FROM placements ORDER BY patient_id")
        upload = await p.upload(school, next_year.to_csv().encode(), school_year="2027/2028")
        await p.tap.next(events.JobValidated, upload.job_id)
        await p.any.publisher.publish(
            events.ConfirmationRequested(job_id=upload.job_id, requested_by=ADMIN)
        )
        finished = await p.tap.next(events.JobFinished, upload.job_id)
    assert finished.imported is not None
    assert finished.imported.updated == 10
    after = await conn.fetch(
        "SELECT * FROM placements WHERE school_year = '2026/2027' ORDER BY patient_id"
    )
    assert after == before
    classes = await conn.fetch(
        "SELECT DISTINCT class_name FROM placements WHERE school_year = '2027/2028'"
    )
    assert [r["class_name"] for r in classes] == ["9Z"]


async def test_two_importer_instances_never_apply_a_job_twice(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    schools = [await seed_school(conn, name=f"Skola {i}") for i in range(6)]
    async with pipeline(settings, "ingest", "validator", "importer", "importer_2", "archiver") as p:
        job_ids = [
            await confirmed(p, school, sample_roster(15, numbers[i * 20 :]))
            for i, school in enumerate(schools)
        ]
        for job_id in job_ids:
            finished = await p.tap.next(events.JobFinished, job_id)
            assert finished.imported is not None
            assert finished.imported.created == 15
    applied = await conn.fetch(
        """SELECT job_id, count(*) AS n FROM job_transitions
            WHERE to_state = 'archiving' GROUP BY job_id"""
    )
    assert {r["job_id"]: r["n"] for r in applied} == dict.fromkeys(job_ids, 1)
    assert await conn.fetchval("SELECT count(*) FROM patients") == 6 * 15


async def test_a_permanent_failure_ends_the_job_failed_with_the_journal_unchanged(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with pipeline(settings) as p:
        upload = await p.upload(school, sample_roster(10, school_age_numbers()).to_csv().encode())
        validated = await p.tap.next(events.JobValidated, upload.job_id)
        p.any.store.delete(validated.report.valid_rows_key)
        await p.any.publisher.publish(
            events.ConfirmationRequested(job_id=upload.job_id, requested_by=ADMIN)
        )
        finished = await p.tap.next(events.JobFinished, upload.job_id)
    assert finished.outcome is events.Outcome.FAILED
    assert finished.error_code == "report_missing"
    assert await conn.fetchval("SELECT count(*) FROM patients") == 0


async def test_a_dropped_database_connection_mid_import_is_retried(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    """The server ends the importer's session mid-transaction; the retry applies it once."""
    school = await seed_school(conn)
    async with pipeline(settings, "ingest", "validator", "archiver") as p:
        upload = await p.upload(school, sample_roster(300, school_age_numbers()).to_csv().encode())
        await p.tap.next(events.JobValidated, upload.job_id)
        await commands.confirm(p.any, upload.job_id, ADMIN)
        lock = conn.transaction()
        await lock.start()
        await conn.execute("LOCK TABLE patients IN SHARE MODE")  # hold the import at its upsert
        async with pipeline(settings, "importer") as importer:

            async def blocked_importer() -> int | None:
                # Inside the locking transaction the activity view is a snapshot: refresh it.
                await conn.execute("SELECT pg_stat_clear_snapshot()")
                pid: int | None = await conn.fetchval(WAITING_IMPORT, merge.APPLY_ROWS[False][:200])
                return pid

            pid = await wait_for(blocked_importer, what="the import waiting on the lock")
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
            await lock.commit()
            finished = await importer.tap.next(events.JobFinished, upload.job_id, within=60)
    assert finished.outcome is events.Outcome.COMPLETED
    assert finished.imported is not None
    assert finished.imported.created == 300
    assert await conn.fetchval("SELECT count(*) FROM patients") == 300


async def test_an_importer_killed_mid_transaction_completes_the_job_once_after_restart(
    settings: Settings, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    school = await seed_school(conn)
    async with pipeline(settings, "ingest", "validator", "archiver") as p:
        upload = await p.upload(school, sample_roster(300, school_age_numbers()).to_csv().encode())
        await p.tap.next(events.JobValidated, upload.job_id)
        await commands.confirm(p.any, upload.job_id, ADMIN)
        lock = conn.transaction()
        await lock.start()
        await conn.execute("LOCK TABLE patients IN SHARE MODE")  # freeze the import mid-way
        with service_processes(settings, tmp_path / "first", names=("importer",)) as first:

            async def importing() -> int | None:
                await conn.execute("SELECT pg_stat_clear_snapshot()")
                pid: int | None = await conn.fetchval(WAITING_IMPORT, merge.APPLY_ROWS[False][:200])
                return pid

            await wait_for(importing, within=60, what="the import inside its transaction")
            first.running[0].process.send_signal(signal.SIGKILL)
            first.running[0].process.wait()
        await lock.commit()
        assert await conn.fetchval("SELECT count(*) FROM patients") == 0
        with service_processes(settings, tmp_path / "second", names=("importer",)):
            finished = await p.tap.next(events.JobFinished, upload.job_id, within=60)
    assert finished.outcome is events.Outcome.COMPLETED
    assert finished.imported == events.ImportCounts(
        created=300, updated=0, unchanged=0, reactivated=0
    )
    assert await conn.fetchval("SELECT count(*) FROM patients") == 300
    moves = await conn.fetchval(
        "SELECT count(*) FROM job_transitions WHERE job_id = $1 AND to_state = 'archiving'",
        upload.job_id,
    )
    assert moves == 1


async def test_a_cancel_during_the_import_rolls_it_back(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with pipeline(settings, "ingest", "validator", "importer", "archiver") as p:
        upload = await p.upload(school, sample_roster(200, school_age_numbers()).to_csv().encode())
        await p.tap.next(events.JobValidated, upload.job_id)
        lock = conn.transaction()
        await lock.start()
        await conn.execute("LOCK TABLE patients IN SHARE MODE")  # hold the import mid-way
        await commands.confirm(p.any, upload.job_id, ADMIN)

        async def importing() -> bool:
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            return bool(await conn.fetchval(WAITING_IMPORT, merge.APPLY_ROWS[False][:200]))

        await wait_for(importing, what="the import inside its transaction")
        await commands.cancel(p.any, upload.job_id, ADMIN, broadcast=True)
        await lock.commit()
        finished = await p.tap.next(events.JobFinished, upload.job_id)
    assert finished.outcome is events.Outcome.CANCELLED
    assert finished.imported is None
    assert await conn.fetchval("SELECT count(*) FROM patients") == 0
    assert not p.tap.of(events.ImportApplied, upload.job_id)


async def test_a_cancel_after_the_import_committed_archives_nobody_and_says_what_was_applied(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    school = await seed_school(conn)
    await seed_active_patients(conn, school, numbers[300:302])
    async with pipeline(settings, "ingest", "validator", "importer") as p:
        job_id = await confirmed(p, school, sample_roster(30, numbers), archive_missing=True)
        await p.tap.next(events.ImportApplied, job_id)
        await commands.cancel(p.any, job_id, ADMIN, broadcast=True)
    async with pipeline(settings, "archiver") as p:
        finished = await p.tap.next(events.JobFinished, job_id)
    assert finished.outcome is events.Outcome.CANCELLED
    assert finished.error_code == "cancelled_after_import"
    assert finished.imported == events.ImportCounts(
        created=30, updated=0, unchanged=0, reactivated=0
    )
    assert finished.archived == 0
    assert await conn.fetchval("SELECT count(*) FROM enrolments WHERE status = 'archived'") == 0
