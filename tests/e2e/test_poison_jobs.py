"""A job whose stage dies on it every time ends failed, and its partition moves on.

Real service processes (the launcher). The validator is SIGKILLed while it works
on the first job, three times: the test holds the job's row lock, so each
validator is caught inside the job (after its attempt was counted, before it
could finish) however fast it is. The fourth validator finds the attempts
exhausted: the job ends failed with ``stage_attempts_exhausted``, its
JobFinished and email go out, and the next job on the same partition, queued
behind it all along, is checked and imported.
"""

from __future__ import annotations

import signal
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
from aiokafka.partitioner import DefaultPartitioner

from rosterflow import events
from rosterflow.kafka.broker import create_broker
from rosterflow.kafka.publishing import Publisher
from rosterflow.launcher import free_port, service_processes
from rosterflow.settings import LOCAL_DIR, HttpSettings, Settings
from rosterflow.storage import ObjectStore
from rosterflow.testing import (
    EventTap,
    read_mailbox,
    sample_roster,
    school_age_numbers,
    seed_school,
    wait_for,
)
from tests.support.pipeline import new_admin, stored_upload

PARTITIONS = 4
KILLS = 3

WAITING_ON_LOCK = """
SELECT pid FROM pg_stat_activity
 WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
"""


def same_partition_ids() -> tuple[UUID, UUID]:
    """Two job ids on one partition (murmur2, as every producer must partition)."""
    partitioner = DefaultPartitioner()
    partitions = list(range(PARTITIONS))
    first = uuid4()
    wanted = partitioner(str(first).encode(), partitions, partitions)
    while True:
        second = uuid4()
        if partitioner(str(second).encode(), partitions, partitions) == wanted:
            return first, second


async def test_a_validator_killed_three_times_on_a_job_fails_it_and_the_next_job_completes(
    settings: Settings, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(
                update={"partitions": PARTITIONS, "max_attempts": KILLS}
            ),
            "http": HttpSettings(port=free_port()),
        }
    )
    school = await seed_school(conn)
    roster = sample_roster(50, school_age_numbers()).to_csv().encode()
    poison, after = same_partition_ids()
    admin = new_admin(events.Language.EN)
    store = ObjectStore.from_settings(settings.storage)
    logs = tmp_path / "logs"

    async def validator_attempts() -> int:
        return int(
            await conn.fetchval(
                "SELECT coalesce(max(attempts), 0) FROM job_attempts"
                " WHERE job_id = $1 AND consumer LIKE '%validator%'",
                poison,
            )
        )

    others = ("ingest", "importer", "archiver", "notifier")
    with service_processes(settings, logs, others) as services:
        broker = create_broker(settings.kafka, "poison-test")
        await broker.connect()
        publisher = Publisher(broker, settings.kafka)
        try:
            async with EventTap(settings.kafka) as tap:
                await publisher.publish(
                    stored_upload(store, school, roster, job_id=poison, admin=admin)
                )
                await tap.next(events.JobAccepted, poison)
                await publisher.publish(
                    stored_upload(store, school, roster, job_id=after, admin=admin)
                )
                await tap.next(events.JobAccepted, after)

                # The job's row, locked (not its key: counting an attempt still
                # works): a validator that takes the job waits inside it.
                holder = await asyncpg.connect(settings.db.dsn.get_secret_value())
                lock = holder.transaction()
                await lock.start()
                await holder.execute("SELECT 1 FROM jobs WHERE id = $1 FOR NO KEY UPDATE", poison)
                for kill in range(1, KILLS + 1):
                    with service_processes(settings, logs / f"v{kill}", ("validator",)) as v:
                        (validator,) = v.running

                        async def inside_the_job(kill: int = kill) -> bool:
                            return await validator_attempts() == kill and bool(
                                await conn.fetch(WAITING_ON_LOCK)
                            )

                        await wait_for(inside_the_job, within=60, what=f"attempt {kill}")
                        validator.process.send_signal(signal.SIGKILL)
                        validator.process.wait(timeout=10)
                    # The killed process's session would wait on the lock for ever.
                    for row in await conn.fetch(WAITING_ON_LOCK):
                        await conn.execute("SELECT pg_terminate_backend($1)", row["pid"])
                await lock.rollback()
                await holder.close()
                assert await validator_attempts() == KILLS

                with service_processes(settings, logs / "v-last", ("validator",)) as v:
                    finished = await tap.next(events.JobFinished, poison, within=60)
                    validated = await tap.next(events.JobValidated, after, within=60)
                    await publisher.publish(
                        events.ConfirmationRequested(job_id=after, requested_by=admin)
                    )
                    done = await tap.next(events.JobFinished, after, within=60)
                    assert v.alive() == ["validator"]
                assert services.alive() == list(others)
        finally:
            await broker.stop()

    assert finished.outcome is events.Outcome.FAILED
    assert finished.error_code == "stage_attempts_exhausted"
    assert finished.error_message is not None
    assert "crashed, ran out of memory or took too long" in finished.error_message
    state = await conn.fetchrow("SELECT state, error_code FROM jobs WHERE id = $1", poison)
    assert state is not None
    assert dict(state) == {"state": "failed", "error_code": "stage_attempts_exhausted"}
    assert validated.counts.valid == 50
    assert done.outcome is events.Outcome.COMPLETED

    async def emailed() -> bool:
        return bool(
            await conn.fetchval(
                "SELECT count(*) FROM notifications WHERE job_id = $1 AND state = 'sent'", poison
            )
        )

    await wait_for(emailed, within=30, what="the failed job's email")
    mails = [m for m in read_mailbox(LOCAL_DIR / "mail") if m["To"] == admin.email]
    texts = [m.get_body(preferencelist=("plain",)).get_content() for m in mails]  # type: ignore[union-attr]
    assert any("stopped every time it tried" in t for t in texts)
