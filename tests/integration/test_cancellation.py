"""Every case of the domain spec's Cancellation section, on the real broker and database.

Cancels go through the HTTP API (the platform's button) unless a test says
otherwise; the stages run in this process as separate runtimes, so a second
instance of a service is a second consumer in the same groups.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from aiokafka.partitioner import DefaultPartitioner

from rosterflow import events, jobs
from rosterflow.jobs import JobState
from rosterflow.kafka.broker import topic_name
from rosterflow.runtime import Runtime
from rosterflow.settings import Settings
from rosterflow.storage import report_keys
from rosterflow.testing import (
    School,
    bearer,
    mint_token,
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    seed_school,
    wait_for,
)
from rosterflow.topics import JOB_ACCEPTED
from services.validator import reading
from tests.support.gates import GatedStorage
from tests.support.http import Api, ingest_api
from tests.support.locks import organisation_locked, someone_waits_for_the_lock
from tests.support.pipeline import final_job, new_admin, pipeline


async def cancel(api: Api, school: School, job_id: UUID) -> dict[str, Any]:
    answer = await api.client.post(
        f"/v1/imports/{job_id}/cancel", headers=bearer(mint_token([school.organisation_id]))
    )
    assert answer.status_code == 200, answer.text
    view: dict[str, Any] = answer.json()
    return view


async def in_state(conn: asyncpg.Connection, job_id: UUID, state: JobState) -> jobs.Job:
    async def probe() -> jobs.Job | None:
        job = await jobs.get(conn, job_id)
        return job if job is not None and job.state is state else None

    return await wait_for(probe, within=60, what=f"{job_id} reaching {state}")


def roster_bytes(size: int = 30) -> bytes:
    return sample_roster(size, school_age_numbers()).to_csv().encode()


async def test_a_cancel_before_validation_means_the_file_is_never_checked(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with ingest_api(settings) as api:
        async with pipeline(settings, "ingest") as p:  # no validator running yet
            upload = await p.upload(school, roster_bytes())
            await p.tap.next(events.JobAccepted, upload.job_id)
            answered = await cancel(api, school, upload.job_id)
        assert answered["state"] == "cancelled"
        async with pipeline(settings, "validator") as p:
            # The validator takes the accepted job from its group's start and stops there.
            finished = await p.tap.next(events.JobFinished, upload.job_id)
            await wait_for(p.tap.drained, what="the validator's group to commit")
    assert finished.outcome is events.Outcome.CANCELLED
    job = await final_job(conn, upload.job_id)
    assert job.state is JobState.CANCELLED
    assert job.validation_started_at is None
    assert not p.tap.of(events.JobValidated, upload.job_id)


def job_id_for_partition(partition: int, partitions: int) -> UUID:
    """A job id whose events land on the given partition (the producer's own hashing)."""
    partitioner = DefaultPartitioner()
    while True:
        candidate = uuid4()
        every = list(range(partitions))
        if partitioner(str(candidate).encode(), every, every) == partition:
            return candidate


def assigned(rt: Runtime, topic: str) -> set[int]:
    for subscriber in rt.broker.subscribers:
        consumer = getattr(subscriber, "consumer", None)
        if consumer is not None and topic in {t.topic for t in consumer.assignment()}:
            return {t.partition for t in consumer.assignment() if t.topic == topic}
    return set()


async def test_a_cancel_during_validation_stops_the_second_of_two_validators(
    settings: Settings, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    school = await seed_school(conn)
    numbers = school_age_numbers()
    # 300,000 rows (about 10 MB) read in blocks of 1 MB. Each validator stops
    # reading at 3 MB until it has heard the cancel, so the check is in the
    # middle of the file when the cancel comes, however fast or loaded the
    # machine is (without the gates, a fast check could finish first).
    monkeypatch.setattr(reading, "BLOCK_BYTES", 1 << 20)
    gates = {name: GatedStorage(gate=3 << 20) for name in ("validator", "validator_2")}
    rows = 300_000
    lines = [f'"{numbers[i % len(numbers)]}";"Alva";"Berg";5;5A\r\n' for i in range(rows)]
    body = ("Personnummer;Förnamn;Efternamn;Årskurs;Klass\r\n" + "".join(lines)).encode()
    topic = topic_name(settings.kafka, JOB_ACCEPTED)
    async with (
        ingest_api(settings) as api,
        pipeline(settings, "ingest", "validator", "validator_2") as p,
    ):
        first, second = p.runtimes["validator"], p.runtimes["validator_2"]
        for name, gate in gates.items():
            gate.install(p.runtimes[name], monkeypatch)

        async def split() -> set[int] | None:
            mine, theirs = assigned(first, topic), assigned(second, topic)
            return theirs if mine and theirs and not mine & theirs else None

        partitions = await wait_for(split, within=60, what="both validators holding a partition")
        job_id = job_id_for_partition(min(partitions), settings.kafka.partitions)
        await p.upload(school, body, job_id=job_id)

        async def checking() -> bool:
            job = await jobs.get(conn, job_id)
            return (
                job is not None
                and job.state is JobState.VALIDATING
                and bool(job.progress_done)
                and any(gate.waiting.is_set() for gate in gates.values())
            )

        await wait_for(checking, within=60, what="the check under way")
        answered = await cancel(api, school, job_id)
        assert answered["state"] == "validating"
        assert answered["cancel_requested"] is True
        finished = await p.tap.next(events.JobFinished, job_id, within=60)
        heard_by = (
            first.cancellations.is_cancelled(job_id),
            second.cancellations.is_cancelled(job_id),
        )
    assert finished.outcome is events.Outcome.CANCELLED
    # Every instance hears every cancel; the second one held the job.
    assert heard_by == (True, True)
    # Only the validator holding the job read the file, and it stopped part-way.
    assert not gates["validator"].streams
    assert gates["validator_2"].streams
    assert all(stream.closed for stream in gates["validator_2"].streams)
    job = await final_job(conn, job_id)
    assert job.state is JobState.CANCELLED
    assert job.validation_finished_at is None
    assert job.progress_done is not None
    assert job.progress_done < rows  # it stopped in the middle of the file
    cause = await conn.fetchval(
        "SELECT cause FROM job_transitions WHERE job_id = $1 AND to_state = 'cancelled'", job_id
    )
    assert cause == "cancelled during validation"
    store = p.any.store
    for key in report_keys(school.organisation_id, job_id):
        assert not (await _exists(store, key))


async def _exists(store: Any, key: str) -> bool:
    try:
        store.size(key)
    except Exception:
        return False
    return True


async def test_a_cancel_while_awaiting_confirmation_ends_the_job_at_once(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with ingest_api(settings) as api, pipeline(settings, "validator") as p:
        upload = await p.upload(school, roster_bytes())
        await p.tap.next(events.JobValidated, upload.job_id)
        answered = await cancel(api, school, upload.job_id)
        confirm = await api.client.post(
            f"/v1/imports/{upload.job_id}/confirm",
            headers=bearer(mint_token([school.organisation_id])),
        )
        finished = await p.tap.next(events.JobFinished, upload.job_id)
    assert answered["state"] == "cancelled"
    assert confirm.status_code == 409
    assert confirm.json()["error"]["code"] == "not_awaiting_confirmation"
    assert finished.outcome is events.Outcome.CANCELLED
    assert not p.tap.of(events.ImportConfirmed, upload.job_id)


async def test_a_cancel_during_the_import_rolls_it_back(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with ingest_api(settings) as api, pipeline(settings, "validator") as p:
        upload = await p.upload(school, roster_bytes())
        await p.tap.next(events.JobValidated, upload.job_id)
        async with pipeline(settings, "importer") as stage:
            async with organisation_locked(settings, school):
                confirmed = await api.client.post(
                    f"/v1/imports/{upload.job_id}/confirm",
                    headers=bearer(mint_token([school.organisation_id])),
                )
                assert confirmed.status_code == 200, confirmed.text
                # The importer has staged the rows and waits inside its transaction.
                await someone_waits_for_the_lock(conn)
                answered = await cancel(api, school, upload.job_id)
            # The lock is gone: the importer goes on to its commit, where the cancel wins.
            finished = await stage.tap.next(events.JobFinished, upload.job_id, within=60)
    assert answered["state"] == "importing"
    assert answered["cancel_requested"] is True
    assert finished.outcome is events.Outcome.CANCELLED
    job = await final_job(conn, upload.job_id)
    assert job.import_started_at is not None
    assert job.import_counts is None
    assert await conn.fetchval("SELECT count(*) FROM patients") == 0
    assert await conn.fetchval("SELECT count(*) FROM placements") == 0


async def archive_ready(
    settings: Settings, conn: asyncpg.Connection, api: Api, school: School
) -> tuple[UUID, list[str]]:
    """A job whose import committed, waiting for the archiver; two leavers to archive."""
    numbers = school_age_numbers()
    roster = sample_roster(30, numbers)
    leavers = numbers[200:202]
    await seed_active_patients(conn, school, leavers + roster.valid_identities)
    async with pipeline(settings, "validator", "importer") as p:
        upload = await p.upload(school, roster.to_csv().encode(), archive_missing=True)
        validated = await p.tap.next(events.JobValidated, upload.job_id)
        assert validated.plan.archive == 2
        assert not validated.plan.archive_held
        confirmed = await api.client.post(
            f"/v1/imports/{upload.job_id}/confirm",
            headers=bearer(mint_token([school.organisation_id])),
        )
        assert confirmed.status_code == 200, confirmed.text
        await p.tap.next(events.ImportApplied, upload.job_id)
    return upload.job_id, leavers


async def active(conn: asyncpg.Connection, identities: list[str]) -> int:
    return int(
        await conn.fetchval(
            """SELECT count(*) FROM enrolments e JOIN patients p ON p.id = e.patient_id
                WHERE p.identity_number = ANY($1) AND e.status = 'active'""",
            identities,
        )
    )


async def test_a_cancel_after_the_import_committed_means_no_archiving(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with ingest_api(settings) as api:
        job_id, leavers = await archive_ready(settings, conn, api, school)
        # No archiver holds the job: the cancel ends it at once.
        answered = await cancel(api, school, job_id)
        async with pipeline(settings, "archiver") as p:
            finished = await p.tap.next(events.JobFinished, job_id, within=60)
            # The archiver, started afterwards, finds it ended and archives nobody.
            await wait_for(p.tap.drained, what="the archiver's group to commit")
    assert answered["state"] == "cancelled"
    assert finished.outcome is events.Outcome.CANCELLED
    assert finished.error_code == "cancelled_after_import"
    # It says what was applied: the 30 students' new names.
    assert finished.imported == events.ImportCounts(
        created=0, updated=30, unchanged=0, reactivated=0
    )
    assert await active(conn, leavers) == 2


async def test_a_cancel_during_archiving_rolls_the_archiving_back(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with ingest_api(settings) as api:
        job_id, leavers = await archive_ready(settings, conn, api, school)
        async with (
            organisation_locked(settings, school) as release,
            pipeline(settings, "archiver") as p,
        ):
            # The archiver has begun its transaction and waits for the lock.
            await someone_waits_for_the_lock(conn)
            answered = await cancel(api, school, job_id)
            await release()
            finished = await p.tap.next(events.JobFinished, job_id, within=60)
    assert answered["state"] == "archiving"
    assert finished.outcome is events.Outcome.CANCELLED
    assert finished.error_code == "cancelled_after_import"
    assert "rolled back" in (finished.error_message or "")
    assert await active(conn, leavers) == 2
    job = await final_job(conn, job_id)
    assert job.archived_count is None


async def test_a_cancel_after_the_job_ended_is_answered_with_its_final_state(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with (
        ingest_api(settings) as api,
        pipeline(settings, "validator", "importer", "archiver") as p,
    ):
        upload = await p.upload(school, roster_bytes())
        await p.tap.next(events.JobValidated, upload.job_id)
        await api.client.post(
            f"/v1/imports/{upload.job_id}/confirm",
            headers=bearer(mint_token([school.organisation_id])),
        )
        finished = await p.tap.next(events.JobFinished, upload.job_id)
        answered = await cancel(api, school, upload.job_id)
        # The platform's cancel event for the ended job changes nothing either.
        await p.any.publisher.publish(
            events.CancelRequested(job_id=upload.job_id, requested_by=new_admin())
        )
        await wait_for(p.tap.drained, what="every group to commit")
    assert finished.outcome is events.Outcome.COMPLETED
    assert answered["state"] == "completed"
    assert answered["cancel_requested"] is False
    job = await final_job(conn, upload.job_id)
    assert job.state is JobState.COMPLETED
    assert job.cancel_requested_at is None
    assert len(p.tap.of(events.JobFinished, upload.job_id)) == 1
