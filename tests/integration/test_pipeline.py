"""The five services together, in this process, against the real broker and database."""

from __future__ import annotations

import asyncpg

from rosterflow import events, jobs
from rosterflow.jobs import JobState
from rosterflow.settings import Settings
from rosterflow.testing import (
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    seed_school,
    wait_for,
)
from services.ingest import commands
from tests.support.pipeline import final_job, mails_to, new_admin, pipeline


async def journal_snapshot(conn: asyncpg.Connection) -> list[tuple[object, ...]]:
    rows = await conn.fetch(
        """SELECT p.identity_number, p.given_name, p.family_name, p.updated_at,
                  e.status, e.archived_by_job, pl.school_year, pl.grade_year, pl.class_name
             FROM patients p
             LEFT JOIN enrolments e ON e.patient_id = p.id
             LEFT JOIN placements pl ON pl.patient_id = p.id
            ORDER BY 1, 7"""
    )
    return [tuple(r) for r in rows]


async def test_event_driven_import_applies_archives_and_emails_once(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    roster = sample_roster(50, numbers, invalid=3)
    school = await seed_school(conn)
    await seed_active_patients(conn, school, numbers[100:104])
    admin = new_admin(events.Language.EN)
    async with pipeline(settings) as p:
        upload = await p.upload(school, roster.to_csv().encode(), archive_missing=True, admin=admin)
        validated = await p.tap.next(events.JobValidated, upload.job_id)
        assert validated.counts.valid == 50
        assert validated.counts.invalid == 3
        assert validated.plan.create == 50
        assert validated.plan.archive == 4

        confirm = events.ConfirmationRequested(job_id=upload.job_id, requested_by=admin)
        await p.any.publisher.publish(confirm)
        finished = await p.tap.next(events.JobFinished, upload.job_id)
        assert finished.outcome is events.Outcome.COMPLETED
        assert finished.archived == 4
        await wait_for(lambda: _async(mails_to(admin.email)), what="the email")

        before = await journal_snapshot(conn)
        transitions = await conn.fetchval("SELECT count(*) FROM job_transitions")
        delivered = [
            event
            for event_type in (
                events.UploadRequested,
                events.JobAccepted,
                events.ImportConfirmed,
                events.ImportApplied,
                events.JobFinished,
            )
            for event in p.tap.of(event_type, upload.job_id)
        ]
        # Every event of the job delivered again: each consumer recognises it.
        for event in [*delivered, confirm]:
            await p.any.publisher.publish(event)
        await wait_for(p.tap.drained, what="the redeliveries being consumed")
        assert await journal_snapshot(conn) == before

        # As after a crash between a handler's commit and its ledger entry: the
        # handlers run again, find the job advanced and only re-publish.
        await conn.execute("DELETE FROM processed_events")
        finished_count = len(p.tap.of(events.JobFinished, upload.job_id))
        for event in [*delivered, confirm]:
            await p.any.publisher.publish(event)
        await wait_for(p.tap.drained, what="the redeliveries being consumed")
        assert len(p.tap.of(events.JobFinished, upload.job_id)) > finished_count
    assert await journal_snapshot(conn) == before
    assert await conn.fetchval("SELECT count(*) FROM job_transitions") == transitions
    assert len(mails_to(admin.email)) == 1
    job = await final_job(conn, upload.job_id)
    assert job.state is JobState.COMPLETED
    states = [
        r["to_state"]
        for r in await conn.fetch(
            "SELECT to_state FROM job_transitions WHERE job_id = $1 ORDER BY id", upload.job_id
        )
    ]
    assert states == [
        "received",
        "validating",
        "awaiting_confirmation",
        "importing",
        "archiving",
        "completed",
    ]


async def test_importing_the_same_file_twice_changes_nothing_the_second_time(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    roster = sample_roster(40, school_age_numbers(), invalid=2)
    school = await seed_school(conn)
    async with pipeline(settings) as p:
        outcomes = []
        for _ in range(2):
            upload = await p.upload(school, roster.to_csv().encode("cp1252"), archive_missing=True)
            validated = await p.tap.next(events.JobValidated, upload.job_id)
            await p.any.publisher.publish(
                events.ConfirmationRequested(job_id=upload.job_id, requested_by=new_admin())
            )
            finished = await p.tap.next(events.JobFinished, upload.job_id)
            outcomes.append((validated.plan, finished))
            if len(outcomes) == 1:
                first_state = await journal_snapshot(conn)
    (_, first), (plan, second) = outcomes
    assert first.imported == events.ImportCounts(created=40, updated=0, unchanged=0, reactivated=0)
    assert plan.unchanged == 40
    assert plan.archive == 0
    assert second.imported == events.ImportCounts(created=0, updated=0, unchanged=40, reactivated=0)
    assert second.archived == 0
    assert await journal_snapshot(conn) == first_state


async def test_cancel_while_awaiting_confirmation_ends_the_job_and_tells_the_admin(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    admin = new_admin()
    async with pipeline(settings) as p:
        upload = await p.upload(
            school, sample_roster(5, school_age_numbers()).to_csv().encode(), admin=admin
        )
        await p.tap.next(events.JobValidated, upload.job_id)
        await p.any.publisher.publish(
            events.CancelRequested(job_id=upload.job_id, requested_by=admin)
        )
        finished = await p.tap.next(events.JobFinished, upload.job_id)
        # A confirmation that arrives after the cancel changes nothing.
        await p.any.publisher.publish(
            events.ConfirmationRequested(job_id=upload.job_id, requested_by=admin)
        )
        await wait_for(lambda: _async(mails_to(admin.email)), what="the email")
    assert finished.outcome is events.Outcome.CANCELLED
    assert (await final_job(conn, upload.job_id)).state is JobState.CANCELLED
    assert await conn.fetchval("SELECT count(*) FROM patients") == 0
    assert mails_to(admin.email)[0]["Subject"] == "Importen avbröts"
    assert not p.tap.of(events.ImportConfirmed, upload.job_id)


async def test_a_file_without_the_required_columns_fails_with_a_clear_reason(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    admin = new_admin(events.Language.EN)
    async with pipeline(settings) as p:
        upload = await p.upload(school, b"Namn;Klass\r\nAnna;7A\r\n", admin=admin)
        finished = await p.tap.next(events.JobFinished, upload.job_id)
        await wait_for(lambda: _async(mails_to(admin.email)), what="the email")
    assert finished.outcome is events.Outcome.FAILED
    assert finished.error_code == "file_missing_column"
    assert finished.error_message is not None
    assert "identity" in finished.error_message
    mail = mails_to(admin.email)[0]
    assert mail["Subject"] == "The import failed"
    assert "Nothing was imported" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]


async def test_a_cancel_before_the_import_commits_leaves_the_journal_unchanged(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    """A cancel that lands after the confirmation, before the importer has run."""
    school = await seed_school(conn)
    async with pipeline(settings, "ingest", "validator") as p:
        upload = await p.upload(school, sample_roster(30, school_age_numbers()).to_csv().encode())
        await p.tap.next(events.JobValidated, upload.job_id)
    admin = new_admin()
    async with pipeline(settings, "ingest") as p:
        await commands.confirm(p.any, upload.job_id, admin)
        # The cancel lands after confirmation, before the importer has run.
        await commands.cancel(p.any, upload.job_id, admin, broadcast=True)
    async with pipeline(settings, "importer") as p:
        finished = await p.tap.next(events.JobFinished, upload.job_id)
    assert finished.outcome is events.Outcome.CANCELLED
    assert await conn.fetchval("SELECT count(*) FROM patients") == 0
    job = await jobs.get(conn, upload.job_id)
    assert job is not None
    assert job.import_counts is None


async def _async(value: object) -> object:
    return value or None
