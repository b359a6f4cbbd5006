"""A job nobody works on does not stay: a cancel ends it, the sweep re-drives it.

"Nobody works on it" is what a stage crashed on, or lost its commit on, looks
like: a running state and no stage holding the job (``rosterflow.holds``).
The stages run in this process; the sweep is called directly, as the ingest's
loop calls it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import pytest
from prometheus_client import REGISTRY

from rosterflow import events, healing, holds, jobs
from rosterflow.jobs import JobState
from rosterflow.journal import job_tables
from rosterflow.kafka.broker import group_name
from rosterflow.kafka.consuming import STAGE_ATTEMPTS_EXHAUSTED
from rosterflow.settings import HealingSettings, Settings
from rosterflow.storage import ObjectStore, StorageError, check_objects
from rosterflow.testing import (
    School,
    bearer,
    mint_token,
    sample_roster,
    school_age_numbers,
    seed_school,
)
from rosterflow.topics import IMPORT_CONFIRMED
from tests.support.http import Api, ingest_api
from tests.support.outbox import lose_events
from tests.support.pipeline import final_job, pipeline

ROWS = 30


def roster() -> bytes:
    return sample_roster(ROWS, school_age_numbers()).to_csv().encode()


async def confirm(api: Api, school: School, job_id: UUID) -> None:
    answer = await api.client.post(
        f"/v1/imports/{job_id}/confirm", headers=bearer(mint_token([school.organisation_id]))
    )
    assert answer.status_code == 200, answer.text


async def causes(conn: asyncpg.Connection, job_id: UUID) -> list[str]:
    rows = await conn.fetch(
        "SELECT cause FROM job_transitions WHERE job_id = $1 ORDER BY id", job_id
    )
    return [r["cause"] for r in rows]


def redriven(state: str) -> float:
    value = REGISTRY.get_sample_value("rosterflow_jobs_redriven_total", {"state": state})
    return value or 0.0


async def test_a_cancel_of_an_importing_job_no_importer_holds_ends_it_and_drops_its_rows(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    # Its rows staged once, in a table of the job's own, as a large job's are.
    settings = settings.model_copy(
        update={"imports": settings.imports.model_copy(update={"stage_once_rows": 10})}
    )
    school = await seed_school(conn)
    async with ingest_api(settings) as api, pipeline(settings, "validator") as p:
        upload = await p.upload(school, roster())
        await p.tap.next(events.JobValidated, upload.job_id)
        # Confirmed, and no importer ever takes it (its event or its commit lost).
        await confirm(api, school, upload.job_id)
        assert (await final_job(conn, upload.job_id)).state is JobState.IMPORTING
        assert await job_tables.job_table_rows(conn, upload.job_id) == ROWS
        answer = await api.client.post(
            f"/v1/imports/{upload.job_id}/cancel",
            headers=bearer(mint_token([school.organisation_id])),
        )
        finished = await p.tap.next(events.JobFinished, upload.job_id)
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "cancelled"
    assert finished.outcome is events.Outcome.CANCELLED
    assert await job_tables.job_table_rows(conn, upload.job_id) is None
    assert (await causes(conn, upload.job_id))[-1] == "cancelled while importing"
    assert not p.tap.of(events.CancelRequested, upload.job_id)


async def test_the_platforms_cancel_of_a_job_stuck_in_validating_ends_it(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with pipeline(settings, "ingest") as p:  # no validator
        upload = await p.upload(school, roster())
        await p.tap.next(events.JobAccepted, upload.job_id)
        # A validator took it and died: the job says validating, nobody holds it.
        moved = await jobs.transition(
            conn, upload.job_id, JobState.RECEIVED, JobState.VALIDATING, "validation started"
        )
        assert moved is not None
        # What the dead validator had written of its report.
        store = ObjectStore.from_settings(settings.storage)
        left = check_objects(school.organisation_id, upload.job_id)
        for key in left[1:4]:
            store.write_bytes(key, b"PAR1 half a report")
        await p.any.publisher.publish(
            events.CancelRequested(job_id=upload.job_id, requested_by=upload.requested_by)
        )
        finished = await p.tap.next(events.JobFinished, upload.job_id)
    assert finished.outcome is events.Outcome.CANCELLED
    assert (await final_job(conn, upload.job_id)).state is JobState.CANCELLED
    assert (await causes(conn, upload.job_id))[-1] == "cancelled while validating"
    for key in left:
        with pytest.raises(StorageError):
            store.size(key)


def quick(settings: Settings) -> Settings:
    """Deadlines of a moment, so a job is overdue as soon as the test needs it."""
    return settings.model_copy(
        update={
            "healing": HealingSettings(
                received_deadline_seconds=0.01,
                validating_deadline_seconds=0.01,
                importing_deadline_seconds=0.01,
                archiving_deadline_seconds=0.01,
            )
        }
    )


async def lose_the_confirmation(conn: asyncpg.Connection, settings: Settings, job_id: UUID) -> None:
    """Importing, as after a confirm whose ImportConfirmed was lost on the way."""
    moved = await jobs.transition(
        conn,
        job_id,
        JobState.AWAITING_CONFIRMATION,
        JobState.IMPORTING,
        "confirmed by u-9",
        confirmed_at=datetime.now(UTC),
    )
    assert moved is not None
    await lose_events(conn, settings.kafka, job_id)


async def test_a_job_stuck_past_its_deadline_is_re_driven_and_completes(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    settings = quick(settings)
    school = await seed_school(conn)
    async with pipeline(settings, "ingest", "validator", "importer", "archiver") as p:
        upload = await p.upload(school, roster())
        await p.tap.next(events.JobValidated, upload.job_id)
        await lose_the_confirmation(conn, settings, upload.job_id)
        before = redriven("importing")
        done = await healing.sweep(p.runtimes["ingest"])
        finished = await p.tap.next(events.JobFinished, upload.job_id, within=60)
    assert [type(d.event) for d in done] == [events.ImportConfirmed]
    assert redriven("importing") == before + 1
    assert finished.outcome is events.Outcome.COMPLETED
    assert finished.imported is not None
    assert finished.imported.created == ROWS
    assert await conn.fetchval("SELECT count(*) FROM patients") == ROWS


async def test_the_ingest_service_sweeps_by_itself(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    settings = quick(settings)
    settings = settings.model_copy(
        update={"healing": settings.healing.model_copy(update={"sweep_seconds": 0.2})}
    )
    school = await seed_school(conn)
    # The ingest service as it runs, its loop sweeping every 0.2 s.
    async with (
        ingest_api(settings),
        pipeline(settings, "validator", "importer", "archiver") as p,
    ):
        upload = await p.upload(school, roster())
        await p.tap.next(events.JobValidated, upload.job_id)
        await lose_the_confirmation(conn, settings, upload.job_id)
        finished = await p.tap.next(events.JobFinished, upload.job_id, within=60)
    assert finished.outcome is events.Outcome.COMPLETED
    assert p.tap.of(events.ImportConfirmed, upload.job_id)[0].confirmed_by.user_id == "operator"


async def test_a_job_a_stage_holds_or_a_person_must_move_is_not_re_driven(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    settings = quick(settings)
    school = await seed_school(conn)
    async with pipeline(settings, "ingest", "validator") as p:
        waiting = await p.upload(school, roster())
        working = await p.upload(school, roster(), school_year="2027/2028")
        for upload in (waiting, working):
            await p.tap.next(events.JobValidated, upload.job_id)
        await lose_the_confirmation(conn, settings, working.job_id)
        ingest = p.runtimes["ingest"]
        # An importer at work holds its job, however long it takes.
        async with holds.holding(ingest.pool, working.job_id):
            assert await healing.sweep(ingest) == []
        # Let go (its importer died): now it is re-driven.
        done = await healing.sweep(ingest)
    assert [d.event.job_id for d in done] == [working.job_id]  # type: ignore[attr-defined]
    assert (await final_job(conn, waiting.job_id)).state is JobState.AWAITING_CONFIRMATION


async def test_re_driving_is_bounded_by_the_stages_attempts(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    """A job its stage takes and never moves ends failed; it is not re-driven for ever."""
    settings = quick(settings)
    school = await seed_school(conn)
    async with pipeline(settings, "ingest", "validator") as p:
        upload = await p.upload(school, roster())
        await p.tap.next(events.JobValidated, upload.job_id)
    await lose_the_confirmation(conn, settings, upload.job_id)
    # The importer took this job's event as often as it may, and it did not move.
    event = events.ImportConfirmed.for_job(upload.job_id, confirmed_by=upload.requested_by)
    await conn.execute(
        "INSERT INTO job_attempts (job_id, consumer, event_id, attempts, last_at)"
        " VALUES ($1, $2, $3, $4, now() - interval '1 hour')",
        upload.job_id,
        group_name(settings.kafka, "importer", IMPORT_CONFIRMED),
        event.event_id,
        settings.kafka.max_attempts,
    )
    async with pipeline(settings, "ingest", "importer") as p:
        done = await healing.sweep(p.runtimes["ingest"])
        finished = await p.tap.next(events.JobFinished, upload.job_id, within=60)
    assert len(done) == 1
    assert finished.outcome is events.Outcome.FAILED
    assert finished.error_code == STAGE_ATTEMPTS_EXHAUSTED
    assert await conn.fetchval("SELECT count(*) FROM patients") == 0
