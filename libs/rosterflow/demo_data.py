"""The demo data job: one school and one roster imported end to end, as the platform does it.

    python -m rosterflow.demo_data      (compose's one-shot `demo-data` service)

It reads the same ROSTERFLOW_* settings as the services, seeds an organisation
with a school whose last year's students (``leavers.txt``) are active, stores
``roster.csv`` in object storage and publishes ``UploadRequested`` — the journal
platform's own way in, so it needs no user token — waits for the check, publishes
``ConfirmationRequested`` and waits until the job ends. Both files come from
``ROSTERFLOW_DEMO_DIR`` (default ``/demo``; compose mounts ``deploy/compose/demo``).
Exit status 0 only when the job completed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID, uuid4

from rosterflow import db, events, jobs
from rosterflow.jobs import TERMINAL, Job, JobState
from rosterflow.kafka.admin import ensure_topics
from rosterflow.kafka.broker import create_broker
from rosterflow.kafka.publishing import Publisher
from rosterflow.settings import Settings
from rosterflow.storage import ObjectStore, upload_key
from rosterflow.testing import School, seed_active_patients, seed_school

ADMIN = events.Requester(
    user_id="demo-admin",
    name="Karin Admin",
    email="karin.admin@skolhalsan.example",
    language=events.Language.SV,
)


@dataclass(frozen=True)
class DemoFiles:
    roster: bytes
    leavers: list[str]

    @classmethod
    def read(cls, directory: Path) -> DemoFiles:
        return cls(
            (directory / "roster.csv").read_bytes(),
            (directory / "leavers.txt").read_text().split(),
        )


async def _wait_for_state(
    settings: Settings, job_id: UUID, states: set[JobState], within: float
) -> Job:
    deadline = time.monotonic() + within
    conn = await db.connect(settings.db.dsn.get_secret_value())
    try:
        while True:
            job = await jobs.get(conn, job_id)
            if job is not None and (job.state in states or job.state in TERMINAL):
                return job
            if time.monotonic() > deadline:
                state = job.state.value if job is not None else "not registered"
                raise TimeoutError(f"job {job_id} is still {state} after {within:.0f} s")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def seed(settings: Settings, leavers: list[str]) -> School:
    conn = await db.connect(settings.db.dsn.get_secret_value())
    try:
        await db.migrate(conn)
        school = await seed_school(conn, name="Solbackens skola")
        await seed_active_patients(conn, school, leavers)
        return school
    finally:
        await conn.close()


async def run(settings: Settings, files: DemoFiles, *, within: float = 300.0) -> Job:
    """Import the demo roster through the running services; the job as it ended."""
    school = await seed(settings, files.leavers)
    job_id = uuid4()
    key = upload_key(school.organisation_id, job_id)
    store = ObjectStore.from_settings(settings.storage)
    written = await asyncio.to_thread(store.write_bytes, key, files.roster)
    await ensure_topics(settings.kafka)
    broker = create_broker(settings.kafka, "demo-data")
    await broker.connect()
    try:
        publisher = Publisher(broker, settings.kafka)
        await publisher.publish(
            events.UploadRequested(
                job_id=job_id,
                request=events.ImportRequest(
                    organisation_id=school.organisation_id,
                    unit_id=school.unit_id,
                    school_year="2026/2027",
                    options=events.ImportOptions(archive_missing=True),
                ),
                file=events.StoredFile(
                    key=key,
                    name="elever-ht2026.csv",
                    sha256=written.sha256,
                    size_bytes=written.size_bytes,
                ),
                requested_by=ADMIN,
            )
        )
        checked = await _wait_for_state(settings, job_id, {JobState.AWAITING_CONFIRMATION}, within)
        if checked.state is not JobState.AWAITING_CONFIRMATION:
            return checked
        await publisher.publish(events.ConfirmationRequested(job_id=job_id, requested_by=ADMIN))
        return await _wait_for_state(settings, job_id, set(TERMINAL), within)
    finally:
        await broker.stop()


def main() -> int:
    directory = Path(os.environ.get("ROSTERFLOW_DEMO_DIR", "/demo"))
    job = asyncio.run(run(Settings(), DemoFiles.read(directory)))
    print(
        f"demo job {job.id}: {job.state.value}; imported {job.import_counts}, "
        f"archived {job.archived_count}"
        + (f"; {job.error_code}: {job.error_message}" if job.error_code else "")
    )
    return 0 if job.state is JobState.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main())
