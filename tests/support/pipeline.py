"""Helpers for integration tests that run services in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from uuid import UUID, uuid4

from pydantic import SecretStr

from rosterflow import events, jobs
from rosterflow.db import Connection
from rosterflow.launcher import free_port
from rosterflow.runtime import Runtime
from rosterflow.settings import (
    LOCAL_DIR,
    AuthSettings,
    DatabaseSettings,
    HttpSettings,
    KafkaSettings,
    Settings,
    StorageSettings,
)
from rosterflow.storage import ObjectStore, upload_key
from rosterflow.testing import TEST_AUTH_SECRET, EventTap, School, read_message, running
from services.archiver import handlers as archiver
from services.importer import handlers as importer
from services.ingest import handlers as ingest
from services.notifier import handlers as notifier
from services.validator import handlers as validator

REGISTER = {
    "ingest": ingest.register,
    "validator": validator.register,
    "importer": importer.register,
    "archiver": archiver.register,
    "notifier": notifier.register,
}
STAGES = ("validator", "importer", "archiver")


@dataclass
class Pipeline:
    settings: Settings
    runtimes: dict[str, Runtime]
    tap: EventTap

    @property
    def any(self) -> Runtime:
        return next(iter(self.runtimes.values()))

    async def upload(
        self,
        school: School,
        content: bytes,
        *,
        archive_missing: bool = False,
        school_year: str = "2026/2027",
        fmt: events.FileFormat = events.FileFormat.ROSTERFLOW_CSV,
        admin: events.Requester | None = None,
        job_id: UUID | None = None,
        treat_as_upper_secondary: bool = False,
    ) -> events.UploadRequested:
        """Store a file and publish the platform's upload event for it, in the chosen format."""
        event = stored_upload(
            self.any.store,
            school,
            content,
            job_id=job_id,
            admin=admin,
            school_year=school_year,
            format=fmt,
            options=events.ImportOptions(
                archive_missing=archive_missing, treat_as_upper_secondary=treat_as_upper_secondary
            ),
        )
        await self.any.publisher.publish(event)
        return event


def process_settings(dsn: str, directory: Path, *, partitions: int) -> Settings:
    """Settings for the services as processes: topics, objects and an API port of their own."""
    return Settings(
        kafka=KafkaSettings(prefix=f"t{uuid4().hex[:10]}.", partitions=partitions),
        db=DatabaseSettings(dsn=dsn),
        storage=StorageSettings(uri=(directory / "objects").as_uri()),
        http=HttpSettings(port=free_port()),
        auth=AuthSettings(hs256_secret=SecretStr(TEST_AUTH_SECRET)),
    )


def stored_upload(
    store: ObjectStore,
    school: School,
    content: bytes,
    *,
    job_id: UUID | None = None,
    admin: events.Requester | None = None,
    school_year: str = "2026/2027",
    format: events.FileFormat = events.FileFormat.ROSTERFLOW_CSV,
    options: events.ImportOptions | None = None,
) -> events.UploadRequested:
    """Store a file as the platform does and the UploadRequested that names it."""
    job_id = job_id or uuid4()
    key = upload_key(school.organisation_id, job_id)
    written = store.write_bytes(key, content)
    return events.UploadRequested(
        job_id=job_id,
        request=events.ImportRequest(
            organisation_id=school.organisation_id,
            unit_id=school.unit_id,
            school_year=school_year,
            format=format,
            options=options or events.ImportOptions(),
        ),
        file=events.StoredFile(
            key=key, name="elever.csv", sha256=written.sha256, size_bytes=written.size_bytes
        ),
        requested_by=admin or new_admin(),
    )


def new_admin(language: events.Language = events.Language.SV) -> events.Requester:
    """An administrator with an address of their own, so a test finds its own emails."""
    return events.Requester(
        user_id="u-9",
        name="Karin Admin",
        email=f"admin-{uuid4().hex[:10]}@skolhalsan.example",
        language=language,
    )


def mails_to(address: str) -> list[EmailMessage]:
    """The messages to one address in the shared mailbox, oldest first.

    The mailbox keeps every message of every run; only files that mention the
    address are parsed, or each poll would parse hundreds of messages.
    """
    needle = address.encode()
    found = []
    for path in sorted((LOCAL_DIR / "mail").glob("*.eml")):
        if needle in path.read_bytes():
            message = read_message(path)
            if message["To"] == address:
                found.append(message)
    return found


async def final_job(conn: Connection, job_id: UUID) -> jobs.Job:
    job = await jobs.get(conn, job_id)
    assert job is not None
    return job


@asynccontextmanager
async def pipeline(settings: Settings, *services: str) -> AsyncIterator[Pipeline]:
    """The named services (all five by default), started in this process.

    ``importer_2`` names a second instance of the importer (same consumer groups).
    """
    async with AsyncExitStack() as stack:
        tap = await stack.enter_async_context(EventTap(settings.kafka))
        runtimes: dict[str, Runtime] = {}
        for name in services or tuple(REGISTER):
            service = name.rsplit("_", 1)[0] if name[-1].isdigit() else name
            rt = Runtime(settings, service)
            REGISTER[service](rt)
            if service in STAGES:
                rt.cancellations.subscribe(rt.broker, settings.kafka)
            runtimes[name] = await stack.enter_async_context(running(rt))
        yield Pipeline(settings, runtimes, tap)
