"""PostgreSQL stopped at once (``pg_ctl stop -m immediate``) at each stage of a job:
every job ends as if nothing had happened.

The five services run as processes against a PostgreSQL server of this
test's own (``tests.support.postgres_server``: the stack's is shared with
other tests). One job per stage, one crash per job. The job is caught at its
stage before the crash, deterministically:

* received: the validator is frozen (SIGSTOP) before the upload;
* validating: the validator is inside its handler, waiting for the ``units``
  table the test has locked;
* awaiting confirmation: nothing runs;
* importing: the importer is inside its transaction, waiting for the
  organisation's lock the test holds;
* archiving: the archiver likewise, the importer having committed;
* notifying: the notifier is frozen while the job completes.

The crash ends every connection, the test's locks with them; the server
starts again at once, and a frozen service is thawed after it. Then each job
must complete, with the journal as an undisturbed import leaves it, its audit
a single pass through the states, and one email.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import asyncpg

from rosterflow import db, events
from rosterflow.journal import merge
from rosterflow.kafka.broker import create_broker
from rosterflow.kafka.publishing import Publisher
from rosterflow.launcher import Service, service_processes
from rosterflow.settings import HealingSettings, Settings
from rosterflow.storage import ObjectStore
from rosterflow.testing import (
    EventTap,
    School,
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    seed_school,
    wait_for,
)
from tests.support.pipeline import mails_to, new_admin, process_settings, stored_upload
from tests.support.postgres_server import PostgresServer, postgres_server

ROWS = 30
UNDISTURBED = [
    "received",
    "validating",
    "awaiting_confirmation",
    "importing",
    "archiving",
    "completed",
]
WAITING_ON_A_LOCK = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND wait_event_type = 'Lock'
"""


@contextmanager
def frozen(service: Service) -> Iterator[None]:
    """The process stopped (SIGSTOP) for the block: it takes nothing meanwhile."""
    service.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        service.process.send_signal(signal.SIGCONT)


class Crashes:
    """The server, the test's connection to it, and the crashes so far."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.conn: asyncpg.Connection | None = None
        self.blockers: list[asyncpg.Connection] = []
        self.count = 0

    async def db(self) -> asyncpg.Connection:
        if self.conn is None or self.conn.is_closed():
            self.conn = await db.connect(self.server.dsn)
        return self.conn

    async def crash(self) -> None:
        self.server.stop_immediately()
        self.count += 1
        for conn in [*self.blockers, self.conn]:
            if conn is not None:
                conn.terminate()
        self.conn, self.blockers = None, []
        self.server.start()

    async def state(self, job_id: UUID) -> str | None:
        state: str | None = await (await self.db()).fetchval(
            "SELECT state FROM jobs WHERE id = $1", job_id
        )
        return state

    async def reaches(self, job_id: UUID, state: str) -> None:
        async def probe() -> bool:
            return await self.state(job_id) == state

        await wait_for(probe, within=60, what=f"job {job_id} {state}")

    async def someone_waits_on_a_lock(self) -> None:
        async def probe() -> bool:
            return bool(await (await self.db()).fetchval(WAITING_ON_A_LOCK))

        await wait_for(probe, within=60, what="a stage waiting for the test's lock")

    async def hold(self, sql: str, *args: object) -> None:
        """A lock taken in a transaction that only the next crash ends."""
        blocker = await db.connect(self.server.dsn)
        await blocker.execute("BEGIN")
        await blocker.execute(sql, *args)
        self.blockers.append(blocker)


async def test_every_job_ends_undisturbed_when_postgresql_stops_at_each_stage(
    tmp_path: Path,
) -> None:
    numbers = school_age_numbers()
    roster = sample_roster(ROWS, numbers)
    leaver = numbers[200]
    with postgres_server() as server:
        settings: Settings = process_settings(server.dsn, tmp_path, partitions=1)
        # A job that did get stuck is re-driven within seconds.
        settings = settings.model_copy(
            update={
                "healing": HealingSettings(
                    sweep_seconds=1,
                    received_deadline_seconds=10,
                    validating_deadline_seconds=10,
                    importing_deadline_seconds=10,
                    archiving_deadline_seconds=10,
                )
            }
        )
        crashes = Crashes(server)
        await db.migrate(await crashes.db())
        store = ObjectStore.from_settings(settings.storage)
        admin = new_admin(events.Language.EN)
        broker = create_broker(settings.kafka, "crash-test")
        jobs: dict[str, tuple[UUID, School]] = {}

        with service_processes(settings, tmp_path / "logs") as services:
            (validator,) = services.instances("validator")
            (archiver,) = services.instances("archiver")
            (notifier,) = services.instances("notifier")
            await broker.connect()
            publisher = Publisher(broker, settings.kafka)
            try:
                async with EventTap(settings.kafka) as tap:

                    async def upload(stage: str) -> UUID:
                        school = await seed_school(await crashes.db())
                        # Last year's student, missing from the file: archived.
                        await seed_active_patients(await crashes.db(), school, [leaver])
                        event = stored_upload(
                            store,
                            school,
                            roster.to_csv().encode(),
                            admin=admin,
                            options=events.ImportOptions(archive_missing=True),
                        )
                        jobs[stage] = (event.job_id, school)
                        await publisher.publish(event)
                        return event.job_id

                    async def confirm(job_id: UUID) -> None:
                        await crashes.reaches(job_id, "awaiting_confirmation")
                        await publisher.publish(
                            events.ConfirmationRequested(job_id=job_id, requested_by=admin)
                        )

                    async def lock_organisation(job_id: UUID) -> None:
                        school = next(s for j, s in jobs.values() if j == job_id)
                        await crashes.hold(merge.LOCK_ORGANISATION, str(school.organisation_id))

                    # received
                    with frozen(validator):
                        job = await upload("received")
                        await crashes.reaches(job, "received")
                        await crashes.crash()
                    await confirm(job)
                    await tap.next(events.JobFinished, job, within=120)

                    # validating
                    with frozen(validator):
                        job = await upload("validating")
                        await crashes.reaches(job, "received")
                        await crashes.hold("LOCK TABLE units IN ACCESS EXCLUSIVE MODE")
                    await crashes.reaches(job, "validating")
                    await crashes.someone_waits_on_a_lock()
                    await crashes.crash()
                    await confirm(job)
                    await tap.next(events.JobFinished, job, within=120)

                    # awaiting confirmation
                    job = await upload("awaiting_confirmation")
                    await crashes.reaches(job, "awaiting_confirmation")
                    await crashes.crash()
                    await confirm(job)
                    await tap.next(events.JobFinished, job, within=120)

                    # importing
                    job = await upload("importing")
                    await crashes.reaches(job, "awaiting_confirmation")
                    await lock_organisation(job)
                    await confirm(job)
                    await crashes.reaches(job, "importing")
                    await crashes.someone_waits_on_a_lock()
                    await crashes.crash()
                    await tap.next(events.JobFinished, job, within=120)

                    # archiving
                    job = await upload("archiving")
                    with frozen(archiver):
                        await confirm(job)
                        await crashes.reaches(job, "archiving")
                        await lock_organisation(job)
                    await crashes.someone_waits_on_a_lock()
                    await crashes.crash()
                    await tap.next(events.JobFinished, job, within=120)

                    # notifying
                    job = await upload("notifying")
                    with frozen(notifier):
                        await confirm(job)
                        await crashes.reaches(job, "completed")
                        await crashes.crash()
                    await tap.next(events.JobFinished, job, within=120)

                    conn = await crashes.db()

                    async def emailed() -> bool:
                        sent = await conn.fetchval(
                            "SELECT count(*) FROM notifications WHERE state = 'sent'"
                        )
                        return bool(sent == len(jobs))

                    await wait_for(emailed, within=60, what="every job's email")
                    finished = {j: tap.of(events.JobFinished, j) for j, _ in jobs.values()}
            finally:
                await broker.stop()
            alive = services.alive()

        assert crashes.count == len(jobs) == 6
        assert alive == ["ingest", "validator", "importer", "archiver", "notifier"]
        assert await conn.fetchval("SELECT count(*) FROM jobs") == len(jobs)
        for stage, (job_id, school) in jobs.items():
            announced = {e.outcome for e in finished[job_id]}
            assert announced == {events.Outcome.COMPLETED}, stage
            row = await conn.fetchrow(
                "SELECT state, import_counts, archived_count FROM jobs WHERE id = $1", job_id
            )
            assert row is not None, stage
            assert row["state"] == "completed", stage
            assert row["import_counts"]["created"] == ROWS, stage
            assert row["archived_count"] == 1, stage
            audit = await conn.fetch(
                "SELECT to_state FROM job_transitions WHERE job_id = $1 ORDER BY id", job_id
            )
            assert [r["to_state"] for r in audit] == UNDISTURBED, stage
            enrolled = await conn.fetch(
                """SELECT p.identity_number, e.status FROM enrolments e
                     JOIN patients p ON p.id = e.patient_id WHERE e.unit_id = $1""",
                school.unit_id,
            )
            active = sorted(r["identity_number"] for r in enrolled if r["status"] == "active")
            assert active == sorted(roster.valid_identities), stage
            archived = [r["status"] for r in enrolled if r["identity_number"] == leaver]
            assert archived == ["archived"], stage
        await conn.close()
    # One email a job, as undisturbed jobs get.
    assert len(mails_to(admin.email)) == len(jobs)
