"""The transactional outbox: a transition and the event that follows it commit together,
the relay publishes what a crash left behind, a delivery that did nothing is not
recorded, and a re-drive goes through the same outbox.

Against the real broker and database.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from rosterflow import events, jobs, outbox
from rosterflow.events import Outcome
from rosterflow.jobs import Job, JobState
from rosterflow.redrive import ledgers_of
from rosterflow.runtime import Runtime
from rosterflow.settings import Settings
from rosterflow.storage import ObjectStore
from rosterflow.testing import (
    EventTap,
    running,
    sample_roster,
    school_age_numbers,
    seed_school,
    wait_for,
)
from services.importer.handlers import register as register_importer
from tests.support.outbox import memory_relay
from tests.support.pipeline import stored_upload

UNSENT = "SELECT kind FROM outbox WHERE job_id = $1 ORDER BY id"


class _Rollback(Exception):
    pass


async def registered(settings: Settings, conn: asyncpg.Connection) -> Job:
    """A job in *received*, its JobAccepted sent as far as the outbox knows."""
    school = await seed_school(conn)
    content = sample_roster(5, school_age_numbers()).to_csv().encode()
    upload = stored_upload(ObjectStore.from_settings(settings.storage), school, content)
    job = await jobs.register(conn, upload)
    assert job is not None
    assert [r["kind"] for r in await conn.fetch(UNSENT, job.id)] == ["job_accepted"]
    await conn.execute("DELETE FROM outbox WHERE job_id = $1", job.id)
    return job


async def test_a_transition_and_its_event_commit_together_or_not_at_all(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    job = await registered(settings, conn)

    async def finish_then_roll_back() -> None:
        async with conn.transaction():
            ended = await jobs.finish(conn, job.id, Outcome.FAILED, "test", error_code="x")
            assert ended is not None
            assert [r["kind"] for r in await conn.fetch(UNSENT, job.id)] == ["job_finished"]
            raise _Rollback

    with pytest.raises(_Rollback):
        await finish_then_roll_back()
    after = await jobs.get(conn, job.id)
    assert after is not None
    assert after.state is JobState.RECEIVED
    assert await conn.fetch(UNSENT, job.id) == []

    # Outside a transaction the transition makes its own around both.
    ended = await jobs.finish(conn, job.id, Outcome.FAILED, "test", error_code="x")
    assert ended is not None
    rows = await conn.fetch("SELECT * FROM outbox WHERE job_id = $1", job.id)
    assert len(rows) == 1
    event = outbox.event_of(rows[0])
    # The deterministic id every re-publication of it carries.
    assert event == ended.finished_event().model_copy(update={"occurred_at": event.occurred_at})


async def test_a_transaction_s_events_are_published_from_memory_once_it_commits(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    job = await registered(settings, conn)
    relay, recorder = memory_relay(settings.kafka)
    assert await relay.flush(job.id)  # its JobAccepted, which registering committed
    recorder.published.clear()

    async def finish_then_roll_back() -> None:
        async with outbox.transaction(conn):
            assert await jobs.finish(conn, job.id, Outcome.FAILED, "test", error_code="x")
            raise _Rollback

    with pytest.raises(_Rollback):
        await finish_then_roll_back()
    assert await relay.flush(job.id)
    assert recorder.published == []  # nothing of a rolled back transaction

    async with outbox.transaction(conn):
        ended = await jobs.finish(conn, job.id, Outcome.FAILED, "test", error_code="x")
    assert ended is not None
    # Reserved for this process's relay: no sweep takes it meanwhile.
    assert await conn.fetchval(
        "SELECT bool_and(claimed_until > clock_timestamp()) FROM outbox WHERE job_id = $1", job.id
    )
    assert await relay.flush(job.id)  # from memory: the pool is never asked
    assert [e.event_id for e in recorder.published] == [ended.finished_event().event_id]


async def test_the_relay_publishes_an_event_a_crash_left_unsent(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    job = await registered(settings, conn)
    # Committed, and the process died before its relay published it.
    ended = await jobs.finish(conn, job.id, Outcome.CANCELLED, "test")
    assert ended is not None
    # Another relay had taken it and died too: its lease ran out.
    await conn.execute(
        "UPDATE outbox SET claimed_until = now() - interval '1 second' WHERE job_id = $1", job.id
    )
    async with EventTap(settings.kafka) as tap, running(Runtime(settings, "archiver")):
        finished = await tap.next(events.JobFinished, job.id)

        async def forgotten() -> bool:
            return not await conn.fetch(UNSENT, job.id)

        await wait_for(forgotten, within=10, what="the published row deleted")
    assert finished.event_id == ended.finished_event().event_id
    assert finished.outcome is Outcome.CANCELLED
    assert len(tap.of(events.JobFinished, job.id)) == 1


async def test_a_delivery_that_changed_nothing_is_not_recorded(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    job = await registered(settings, conn)
    results = [False, True]
    seen: list[events.JobAccepted] = []
    handled = asyncio.Event()

    async def handler(event: events.JobAccepted) -> bool:
        seen.append(event)
        handled.set()
        return results[len(seen) - 1]

    probe = Runtime(settings, "validator")
    probe.consumer.handle(events.JobAccepted, handler)
    accepted = events.JobAccepted.for_job(job.id, request=job.request, file=job.file)
    group = f"{settings.kafka.prefix}rosterflow.validator.job_accepted"
    record = "SELECT count(*) FROM processed_events WHERE consumer = $1 AND event_id = $2"

    async def recorded() -> bool:
        return bool(await conn.fetchval(record, group, accepted.event_id))

    async with running(probe):
        await probe.publisher.publish(accepted)
        await asyncio.wait_for(handled.wait(), 30)
        handled.clear()
        # The same event again (as after the job got where the handler expects
        # it): not skipped, since the first delivery did nothing.
        await probe.publisher.publish(accepted)
        await asyncio.wait_for(handled.wait(), 30)
        await wait_for(recorded, within=10, what="the second delivery recorded")
    assert [e.event_id for e in seen] == [accepted.event_id, accepted.event_id]


async def test_the_importer_does_not_record_a_confirmation_its_job_was_not_ready_for(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    job = await registered(settings, conn)
    confirmed = events.ImportConfirmed.for_job(job.id, confirmed_by=jobs.OPERATOR)
    group = f"{settings.kafka.prefix}rosterflow.importer.import_confirmed"
    importer = Runtime(settings, "importer")
    register_importer(importer)
    attempts = "SELECT attempts FROM job_attempts WHERE consumer = $1 AND event_id = $2"
    # The same job's next message, on the same partition: a consumer takes one
    # message of a partition at a time, so once this one is counted the
    # confirmation's handler has returned.
    after = events.ImportConfirmed(job_id=job.id, confirmed_by=jobs.OPERATOR)
    async with running(importer):
        await importer.publisher.publish(confirmed)
        await importer.publisher.publish(after)

        async def tried() -> bool:
            return bool(await conn.fetchval(attempts, group, after.event_id))

        await wait_for(tried, within=30, what="the next delivery")
    assert await conn.fetchval(attempts, group, confirmed.event_id) == 1
    assert not await conn.fetchval(
        "SELECT count(*) FROM processed_events WHERE consumer = $1 AND event_id = $2",
        group,
        confirmed.event_id,
    )
    still = await jobs.get(conn, job.id)
    assert still is not None
    assert still.state is JobState.RECEIVED


async def test_redrive_writes_the_event_that_moves_the_job_on_into_the_outbox(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    job = await registered(settings, conn)
    accepted = events.JobAccepted.for_job(job.id, request=job.request, file=job.file)
    (validator,) = ledgers_of(settings.kafka, accepted)
    await conn.execute(
        "INSERT INTO processed_events (consumer, event_id, job_id) VALUES ($3, $1, $2),"
        " ('a group that does not read it', $1, $2)",
        accepted.event_id,
        job.id,
        validator,
    )
    event = await jobs.redrive(conn, job, lambda e: ledgers_of(settings.kafka, e))
    assert event is not None
    assert event.event_id == accepted.event_id
    assert [r["kind"] for r in await conn.fetch(UNSENT, job.id)] == ["job_accepted"]
    kept = await conn.fetch(
        "SELECT consumer FROM processed_events WHERE event_id = $1", accepted.event_id
    )
    assert [r["consumer"] for r in kept] == ["a group that does not read it"]

    ended = await jobs.finish(conn, job.id, Outcome.FAILED, "test", error_code="x")
    assert ended is not None
    again = await jobs.redrive(conn, ended, lambda e: ledgers_of(settings.kafka, e))
    assert again is not None
    assert again.event_id == ended.finished_event().event_id
