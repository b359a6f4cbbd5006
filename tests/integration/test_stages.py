"""Each stage on its own, against the real broker, database, storage and SMTP server."""

from __future__ import annotations

import asyncpg
import pyarrow.compute as pc

from rosterflow import events
from rosterflow.jobs import JobState
from rosterflow.settings import Settings
from rosterflow.storage import report_keys
from rosterflow.testing import (
    Roster,
    School,
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    seed_school,
    wait_for,
)
from tests.support.pipeline import final_job, mails_to, new_admin, pipeline


async def test_validator_writes_the_report_under_the_organisations_prefix(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    roster = sample_roster(25, school_age_numbers(), invalid=3)
    school = await seed_school(conn)
    async with pipeline(settings, "ingest", "validator") as p:
        upload = await p.upload(school, roster.to_csv().encode("cp1252"))
        validated = await p.tap.next(events.JobValidated, upload.job_id)
        store = p.any.store
    valid_key, invalid_key = report_keys(school.organisation_id, upload.job_id)
    assert validated.report == events.Report(valid_rows_key=valid_key, invalid_rows_key=invalid_key)
    assert valid_key.startswith(f"orgs/{school.organisation_id}/")
    valid = store.parquet_file(valid_key).read()
    assert sorted(valid.column("identity_number").to_pylist()) == sorted(roster.valid_identities)
    issues = store.parquet_file(invalid_key).read()
    errors = issues.filter(pc.equal(issues.column("severity"), "error"))
    assert (
        dict(zip(errors.column("line").to_pylist(), errors.column("code").to_pylist(), strict=True))
        == roster.invalid_lines
    )
    assert all(errors.column("message_sv").to_pylist())
    job = await final_job(conn, upload.job_id)
    assert job.state is JobState.AWAITING_CONFIRMATION
    assert job.check_result is not None
    assert job.check_result.counts == validated.counts
    assert job.validation_started_at is not None
    assert job.validation_finished_at is not None


async def _import(settings: Settings, school: School, roster: Roster) -> events.JobFinished:
    async with pipeline(settings) as p:
        upload = await p.upload(school, roster.to_csv().encode(), archive_missing=True)
        await p.tap.next(events.JobValidated, upload.job_id)
        await p.any.publisher.publish(
            events.ConfirmationRequested(job_id=upload.job_id, requested_by=new_admin())
        )
        return await p.tap.next(events.JobFinished, upload.job_id)


async def test_archiving_spares_excluded_patients_and_rows_with_typos(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    numbers = school_age_numbers()
    roster = sample_roster(60, numbers)
    typo = numbers[60]
    roster.rows.append([typo, "", "Berg", "3", "3A"])  # given name missing: an invalid row
    excluded, leaving = numbers[61], numbers[62:65]
    school = await seed_school(conn)
    await seed_active_patients(conn, school, [typo, excluded, *leaving])
    await conn.execute(
        """INSERT INTO archive_exclusions (unit_id, patient_id, created_by)
           SELECT $1, id, 'test' FROM patients WHERE identity_number = $2""",
        school.unit_id,
        excluded,
    )
    finished = await _import(settings, school, roster)
    assert finished.outcome is events.Outcome.COMPLETED
    assert finished.archived == 3
    rows = await conn.fetch(
        """SELECT p.identity_number, e.status FROM enrolments e
             JOIN patients p ON p.id = e.patient_id WHERE e.unit_id = $1""",
        school.unit_id,
    )
    statuses = {r["identity_number"]: r["status"] for r in rows}
    assert statuses[typo] == "active"
    assert statuses[excluded] == "active"
    assert [statuses[n] for n in leaving] == ["archived"] * 3


async def test_notifier_sends_one_email_per_outcome_however_often_it_hears_it(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    admin = new_admin(events.Language.EN)
    async with pipeline(settings, "ingest", "validator", "notifier") as p:
        upload = await p.upload(school, b"Namn\r\nAnna\r\n", admin=admin)
        finished = await p.tap.next(events.JobFinished, upload.job_id)
        for _ in range(3):
            await p.any.publisher.publish(finished)
        await p.any.publisher.publish(finished.model_copy(update={"event_id": finished.job_id}))
        await wait_for(p.tap.drained, what="the duplicates being consumed")
    assert len(mails_to(admin.email)) == 1
    state = await conn.fetchval("SELECT state FROM notifications WHERE job_id = $1", upload.job_id)
    assert state == "sent"


async def test_a_refused_recipient_is_recorded_and_not_retried(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    admin = new_admin().model_copy(update={"email": "nobody@refused.invalid"})
    async with pipeline(settings, "ingest", "validator", "notifier") as p:
        upload = await p.upload(school, b"Namn\r\nAnna\r\n", admin=admin)
        await p.tap.next(events.JobFinished, upload.job_id)

        async def refused() -> asyncpg.Record | None:
            return await conn.fetchrow(
                "SELECT state, last_error FROM notifications "
                "WHERE job_id = $1 AND state <> 'sending'",
                upload.job_id,
            )

        row = await wait_for(refused, what="the refusal being recorded")
        await wait_for(p.tap.drained, what="the event being consumed")
    assert row["state"] == "refused"
    assert "550" in row["last_error"]
    assert not p.tap.of(events.DeadLetter)
