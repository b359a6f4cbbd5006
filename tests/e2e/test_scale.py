"""Two processes of every service in the same consumer groups, and one of them killed.

Jobs go in the platform's way (stored file + UploadRequested), their ids chosen
so their messages land on every partition; the test reads which instance owns
which partition from the broker (each instance has its own Kafka client id), so
"spread over both instances" is what the broker did, not what the test hoped.
Then an importer instance is SIGKILLed while it applies a job: its partitions
must go to the other instance and every job must end completed, exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.partitioner import DefaultPartitioner

from rosterflow import events, topics
from rosterflow.kafka.broker import create_broker, group_name, topic_name
from rosterflow.kafka.publishing import Publisher
from rosterflow.launcher import free_port, service_processes
from rosterflow.settings import HttpSettings, KafkaSettings, Settings
from rosterflow.storage import ObjectStore, upload_key
from rosterflow.testing import School, sample_roster, school_age_numbers, seed_school, wait_for
from tests.support.pipeline import new_admin

PARTITIONS = 4
JOBS = 8
ROWS = 6000


async def owners(
    settings: KafkaSettings, service: str, event: type[events.Message]
) -> dict[str, set[int]]:
    """Kafka client id → the partitions of the event's topic that member is assigned."""
    spec = topics.topic_for(event)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        (description,) = await admin.describe_consumer_groups([group_name(settings, service, spec)])
    finally:
        await admin.close()
    (group,) = description.groups
    owned: dict[str, set[int]] = {}
    for member in group[
        5
    ]:  # (member_id, [group_instance_id,] client_id, host, metadata, assignment)
        client_id, assignment = member[-4], member[-1]
        decoded = ConsumerProtocolMemberAssignment.decode(assignment) if assignment else None
        partitions = {
            p
            for topic, ps in (decoded.assignment if decoded else [])
            for p in ps
            if topic == topic_name(settings, spec)
        }
        owned[client_id] = partitions
    return owned


def spread_job_ids(count: int) -> list[UUID]:
    """Job ids whose keys cover every partition (Kafka's default partitioner, murmur2)."""
    partitioner = DefaultPartitioner()
    chosen: list[UUID] = []
    while len(chosen) < count:
        job_id = uuid4()
        wanted = len(chosen) % PARTITIONS
        if (
            partitioner(str(job_id).encode(), list(range(PARTITIONS)), list(range(PARTITIONS)))
            == wanted
        ):
            chosen.append(job_id)
    return chosen


@asynccontextmanager
async def partitions_of(
    settings: KafkaSettings, event: type[events.Message]
) -> AsyncIterator[dict[UUID, int]]:
    """The partition every message of the event's topic arrived on, by job id (key)."""
    seen: dict[UUID, int] = {}
    consumer = AIOKafkaConsumer(
        topic_name(settings, topics.topic_for(event)),
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()

    async def collect() -> None:
        async for record in consumer:
            if record.key:
                seen[UUID(record.key.decode())] = record.partition

    task = asyncio.create_task(collect())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()


async def balanced(
    settings: KafkaSettings, service: str, event: type[events.Message]
) -> dict[str, set[int]] | None:
    owned = await owners(settings, service, event)
    if (
        len(owned) == 2
        and all(owned.values())
        and set().union(*owned.values()) == set(range(PARTITIONS))
    ):
        return owned
    return None


async def test_two_instances_share_the_jobs_and_one_killed_mid_import_loses_none(
    settings: Settings, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"partitions": PARTITIONS}),
            "http": HttpSettings(port=free_port()),
        }
    )
    kafka = settings.kafka
    roster = sample_roster(ROWS, school_age_numbers()).to_csv().encode()
    schools: list[School] = [await seed_school(conn) for _ in range(JOBS)]
    job_ids = spread_job_ids(JOBS)
    store = ObjectStore.from_settings(settings.storage)
    admin = new_admin()

    with service_processes(settings, tmp_path / "logs", instances=2) as services:
        validators = await wait_for(
            lambda: balanced(kafka, "validator", events.JobAccepted),
            within=60,
            what="validator group",
        )
        importers = await wait_for(
            lambda: balanced(kafka, "importer", events.ImportConfirmed),
            within=60,
            what="importer group",
        )
        # Each instance has its own client id: <client_id>-<instance>-<service>.
        assert sorted(validators) == [
            f"{kafka.client_id}-1-validator",
            f"{kafka.client_id}-2-validator",
        ]

        broker = create_broker(kafka, "scale-test")
        await broker.connect()
        publisher = Publisher(broker, kafka)
        async with (
            partitions_of(kafka, events.JobAccepted) as accepted,
            partitions_of(kafka, events.ImportConfirmed) as confirmed,
        ):
            for school, job_id in zip(schools, job_ids, strict=True):
                key = upload_key(school.organisation_id, job_id)
                written = store.write_bytes(key, roster)
                await publisher.publish(
                    events.UploadRequested(
                        job_id=job_id,
                        request=events.ImportRequest(
                            organisation_id=school.organisation_id,
                            unit_id=school.unit_id,
                            school_year="2026/2027",
                        ),
                        file=events.StoredFile(
                            key=key,
                            name="elever.csv",
                            sha256=written.sha256,
                            size_bytes=written.size_bytes,
                        ),
                        requested_by=admin,
                    )
                )

            async def all_in(states: set[str]) -> bool:
                rows = await conn.fetch("SELECT state FROM jobs WHERE id = ANY($1)", job_ids)
                return len(rows) == JOBS and all(r["state"] in states for r in rows)

            await wait_for(
                lambda: all_in({"awaiting_confirmation"}), within=120, what="every check"
            )
            # Both validator instances checked jobs: the jobs' partitions hit both owners.
            for client, owned in validators.items():
                assert {accepted[j] for j in job_ids} & owned, f"{client} got no job"

            for job_id in job_ids:
                await publisher.publish(
                    events.ConfirmationRequested(job_id=job_id, requested_by=admin)
                )

            # Kill the importer instance that is applying a job right now.
            async def importing_now() -> UUID | None:
                found: UUID | None = await conn.fetchval(
                    "SELECT id FROM jobs WHERE id = ANY($1) AND state = 'importing' "
                    "AND import_started_at IS NOT NULL LIMIT 1",
                    job_ids,
                )
                return found

            victim_job = await wait_for(importing_now, within=120, what="an import in progress")

            async def its_partition() -> int | None:
                return confirmed.get(victim_job)

            partition = await wait_for(its_partition, within=10, what="the job's partition")
            (victim_client,) = [c for c, owned in importers.items() if partition in owned]
            instance = victim_client.split("-")[-2]
            (victim,) = [
                s for s in services.instances("importer") if s.name == f"importer-{instance}"
            ]
            victim.process.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            victim.process.wait()
            state = await conn.fetchval("SELECT state FROM jobs WHERE id = $1", victim_job)
            assert state == "importing", "the import finished before the kill; nothing was tested"

            # The survivor takes every partition and finishes every job.
            survivor = await wait_for(
                lambda: _single_owner(kafka), within=60, what="the survivor owning every partition"
            )
            assert survivor != victim_client
            await wait_for(lambda: all_in({"completed"}), within=180, what="every job completed")
            handed_over = time.monotonic() - killed_at
            await broker.stop()

        async def emails_settled() -> bool:
            count = await conn.fetchval(
                "SELECT count(*) FROM notifications WHERE job_id = ANY($1) AND state = 'sent'",
                job_ids,
            )
            return bool(count == JOBS)

        await wait_for(emails_settled, within=60, what="one email per job")
        alive = services.alive()
        assert f"importer-{instance}" not in alive
        assert len(alive) == 2 * 5 - 1

    # Every job completed once, applied once: no duplicate patients, one email.
    completed = await conn.fetch(
        "SELECT job_id, count(*) AS n FROM job_transitions "
        "WHERE job_id = ANY($1) AND to_state = 'completed' GROUP BY job_id",
        job_ids,
    )
    assert sorted((r["job_id"], r["n"]) for r in completed) == sorted((j, 1) for j in job_ids)
    applied = await conn.fetch(
        "SELECT job_id, count(*) AS n FROM job_transitions "
        "WHERE job_id = ANY($1) AND to_state = 'archiving' GROUP BY job_id",
        job_ids,
    )
    assert sorted((r["job_id"], r["n"]) for r in applied) == sorted((j, 1) for j in job_ids)
    counts = await conn.fetch("SELECT import_counts FROM jobs WHERE id = ANY($1)", job_ids)
    assert all(r["import_counts"]["created"] == ROWS for r in counts), counts
    for school in schools:
        patients = await conn.fetchval(
            "SELECT count(*) FROM patients WHERE organisation_id = $1", school.organisation_id
        )
        assert patients == ROWS
    sent = await conn.fetchval("SELECT count(*) FROM notifications WHERE job_id = ANY($1)", job_ids)
    assert sent == JOBS
    assert handed_over < 180


async def _single_owner(settings: KafkaSettings) -> str | None:
    owned = await owners(settings, "importer", events.ImportConfirmed)
    live = {client: parts for client, parts in owned.items() if parts}
    if len(live) == 1 and set().union(*live.values()) == set(range(PARTITIONS)):
        return next(iter(live))
    return None
