"""The operator's command line against the real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import io
import re
from uuid import UUID, uuid4

import asyncpg
from aiokafka import AIOKafkaProducer

from rosterflow import events, jobs
from rosterflow.kafka.broker import topic_name
from rosterflow.ops.cli import run
from rosterflow.settings import Settings
from rosterflow.storage import upload_key
from rosterflow.testing import sample_roster, school_age_numbers, seed_school, wait_for
from rosterflow.topics import DEAD_LETTERS, JOB_ACCEPTED
from tests.support.pipeline import Pipeline, new_admin, pipeline


async def ops(settings: Settings, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = await run(list(argv), settings, out, err)
    return status, out.getvalue(), err.getvalue()


async def state_of(conn: asyncpg.Connection, job_id: UUID) -> str:
    return str(await conn.fetchval("SELECT state FROM jobs WHERE id = $1", job_id))


async def reaches(conn: asyncpg.Connection, job_id: UUID, state: str) -> None:
    async def probe() -> bool:
        return await state_of(conn, job_id) == state

    await wait_for(probe, within=60, what=f"job {job_id} reaching {state}")


async def registered_only(p: Pipeline, conn: asyncpg.Connection) -> events.JobAccepted:
    """A job in *received* whose JobAccepted never reached Kafka (a lost publish)."""
    school = await seed_school(conn)
    job_id = uuid4()
    key = upload_key(school.organisation_id, job_id)
    content = sample_roster(8, school_age_numbers()).to_csv().encode()
    written = p.any.store.write_bytes(key, content)
    upload = events.UploadRequested(
        job_id=job_id,
        request=events.ImportRequest(
            organisation_id=school.organisation_id, unit_id=school.unit_id, school_year="2026/2027"
        ),
        file=events.StoredFile(
            key=key, name="elever.csv", sha256=written.sha256, size_bytes=written.size_bytes
        ),
        requested_by=new_admin(),
    )
    assert await jobs.register(conn, upload)
    # Sent, as far as the outbox knows, and lost on the way.
    await conn.execute("DELETE FROM outbox WHERE job_id = $1", job_id)
    accepted = events.JobAccepted.for_job(job_id, request=upload.request, file=upload.file)
    assert isinstance(accepted, events.JobAccepted)
    return accepted


async def test_jobs_by_state_and_a_timeline(settings: Settings, conn: asyncpg.Connection) -> None:
    async with pipeline(settings, "ingest", "validator") as p:
        school = await seed_school(conn)
        upload = await p.upload(school, sample_roster(10, school_age_numbers()).to_csv().encode())
        await reaches(conn, upload.job_id, "awaiting_confirmation")

    status, out, _ = await ops(settings, "jobs", "--state", "awaiting_confirmation")
    assert status == 0
    assert str(upload.job_id) in out
    assert "1 job(s) in awaiting_confirmation" in out
    status, out, _ = await ops(settings, "jobs", "--state", "importing")
    assert str(upload.job_id) not in out

    status, out, _ = await ops(settings, "timeline", str(upload.job_id))
    assert status == 0
    lines = out.splitlines()
    moves = [line.split("→")[1].split()[0] for line in lines if "→" in line]
    assert moves == ["received", "validating", "awaiting_confirmation"]
    assert lines[-1] == "now: awaiting_confirmation"
    # Nothing personal: not the file name, nor the administrator.
    assert "elever.csv" not in out
    assert "Karin" not in out

    status, _, err = await ops(settings, "timeline", str(uuid4()))
    assert status == 2
    assert "no job" in err


async def test_cancel_ends_a_waiting_job_through_the_cancellation_topic(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    async with pipeline(settings, "ingest", "validator") as p:
        school = await seed_school(conn)
        upload = await p.upload(school, sample_roster(10, school_age_numbers()).to_csv().encode())
        await reaches(conn, upload.job_id, "awaiting_confirmation")
        status, out, _ = await ops(settings, "cancel", str(upload.job_id), "--wait", "60")
        assert status == 0, out
        assert f"job {upload.job_id}: cancelled" in out
        status, out, _ = await ops(settings, "cancel", str(upload.job_id))
        assert "has ended already: cancelled" in out
    assert await state_of(conn, upload.job_id) == "cancelled"


async def test_redrive_moves_on_a_job_whose_event_was_lost(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    async with pipeline(settings, "ingest", "validator") as p:
        accepted = await registered_only(p, conn)
        # The validator once handled this event id (recorded) but the job stayed put.
        group = f"{settings.kafka.prefix}rosterflow.validator.job_accepted"
        await conn.execute(
            "INSERT INTO processed_events (consumer, event_id, job_id) VALUES ($1, $2, $3)",
            group,
            accepted.event_id,
            accepted.job_id,
        )
        status, out, _ = await ops(settings, "redrive", str(accepted.job_id))
        assert status == 0
        assert "re-published JobAccepted" in out
        assert "after clearing its processed entry" in out
        await reaches(conn, accepted.job_id, "awaiting_confirmation")
        # Waiting for the administrator: nothing to re-drive.
        status, _, err = await ops(settings, "redrive", str(accepted.job_id))
        assert status == 2
        assert "waits for an administrator" in err
        # Re-driving the same stage twice is harmless: the job does not move back.
        assert len(p.tap.of(events.JobValidated, accepted.job_id)) >= 1


async def test_dead_letters_are_listed_and_replayed_after_the_fix(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    async with pipeline(settings, "ingest", "validator") as p:
        accepted = await registered_only(p, conn)
        # As if the validator had dead-lettered it over a bug since fixed.
        raw = accepted.model_dump_json().encode()
        letter = events.DeadLetter(
            job_id=accepted.job_id,
            source_topic=topic_name(settings.kafka, JOB_ACCEPTED),
            partition=0,
            offset=41,
            consumer="validator",
            reason="handler error: KeyError: 'grade'",
            original_key_b64=base64.b64encode(str(accepted.job_id).encode()).decode(),
            original_value_b64=base64.b64encode(raw).decode(),
        )
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(
                topic_name(settings.kafka, DEAD_LETTERS), letter.model_dump_json().encode()
            )
            # And a message that is no JSON at all: dead-lettered by the validator itself.
            await producer.send_and_wait(topic_name(settings.kafka, JOB_ACCEPTED), b"\xff not json")
        finally:
            await producer.stop()

        async def two_letters() -> str | None:
            status, out, _ = await ops(settings, "dead-letters", "list")
            return out if status == 0 and "2 dead letter(s)" in out else None

        listed = await wait_for(two_letters, within=60, what="two dead letters listed")
        assert f"job {accepted.job_id}" in listed
        assert "handler error: KeyError" in listed
        assert "not a valid JobAccepted" in listed
        assert await state_of(conn, accepted.job_id) == "received"

        status, out, err = await ops(
            settings, "dead-letters", "replay", "--job", str(accepted.job_id)
        )
        assert status == 0
        assert "replayed 1 message(s)" in out
        assert "replayed: 1/1" in err
        await reaches(conn, accepted.job_id, "awaiting_confirmation")

        status, out, _ = await ops(settings, "dead-letters", "replay", "--job", str(uuid4()))
        assert status == 1
        assert "no dead letter matches" in out


async def test_watch_follows_a_job_with_progress_bars_and_stage_timings(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    async with pipeline(settings) as p:
        school = await seed_school(conn)
        roster = sample_roster(400, school_age_numbers()).to_csv().encode()
        upload = await p.upload(school, roster, archive_missing=True)
        # The upload's event creates the job's row; watch refuses a job that does not exist.
        await wait_for(
            lambda: conn.fetchval("SELECT true FROM jobs WHERE id = $1", upload.job_id),
            what="the job's row",
        )
        watching = asyncio.create_task(ops(settings, "watch", str(upload.job_id)))
        await reaches(conn, upload.job_id, "awaiting_confirmation")
        # The watcher sees the job wait for its administrator: it does not end meanwhile.
        ended, _ = await asyncio.wait({watching}, timeout=0.5)
        assert not ended
        await p.any.publisher.publish(
            events.ConfirmationRequested(job_id=upload.job_id, requested_by=new_admin())
        )
        status, out, err = await asyncio.wait_for(watching, 60)

    assert status == 0, out + err
    lines = out.splitlines()
    assert lines[0].startswith(f"job {upload.job_id}")
    assert "awaiting_confirmation  waits for the administrator to confirm" in out
    timed = {
        m[1]: float(m[2]) for line in lines if (m := re.fullmatch(r"\s*(\w+)\s+([\d.]+) s", line))
    }
    assert list(timed) == [
        "received",
        "validating",
        "awaiting_confirmation",
        "importing",
        "archiving",
    ]
    assert all(seconds >= 0 for seconds in timed.values())
    assert timed["awaiting_confirmation"] >= 0.5
    assert lines[-1].startswith("completed after ")
    total = float(lines[-1].split()[2])
    assert total >= sum(timed.values()) - 0.01
    # The bars: each stage, full at its end, with the rows done of the file's rows.
    bars = {line.split()[0]: line for line in err.splitlines() if "rows" in line}
    assert set(bars) == {"validating", "importing"}
    assert "400/400 rows" in bars["validating"]
    assert "400/400 rows" in bars["importing"]
    assert "━" in bars["importing"]
