"""The front door against the real broker and database."""

from __future__ import annotations

import hashlib
from uuid import UUID, uuid4

import asyncpg
import httpx

from rosterflow import events, jobs
from rosterflow.runtime import Runtime
from rosterflow.settings import Settings
from rosterflow.testing import EventTap, bearer, mint_token, running, seed_school, wait_for
from services.ingest import handlers
from services.ingest.app import create_app

WHO = events.Requester(user_id="u-1", name="Karin Admin", email="karin@example.org")


def upload_event(org: UUID, unit: UUID) -> events.UploadRequested:
    return events.UploadRequested(
        job_id=uuid4(),
        request=events.ImportRequest(organisation_id=org, unit_id=unit, school_year="2026/2027"),
        file=events.StoredFile(
            key="orgs/x/uploads/y/source", name="a.csv", sha256="0" * 64, size_bytes=10
        ),
        requested_by=WHO,
    )


async def test_upload_event_for_a_known_unit_is_accepted_once(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    event = upload_event(school.organisation_id, school.unit_id)
    rt = Runtime(settings, "ingest")
    handlers.register(rt)
    async with EventTap(settings.kafka) as tap, running(rt):
        await rt.publisher.publish(event)
        await rt.publisher.publish(event)  # a redelivery by the platform
        accepted = await tap.next(events.JobAccepted, event.job_id)
        assert accepted.request == event.request
        job = await jobs.get(conn, event.job_id)
        assert job is not None
        assert job.state is jobs.JobState.RECEIVED
    transitions = await conn.fetch("SELECT * FROM job_transitions WHERE job_id = $1", event.job_id)
    assert [t["to_state"] for t in transitions] == ["received"]


async def test_upload_event_for_another_organisations_unit_is_rejected(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    mine = await seed_school(conn)
    theirs = await seed_school(conn, name="Annan skola")
    event = upload_event(mine.organisation_id, theirs.unit_id)
    rt = Runtime(settings, "ingest")
    handlers.register(rt)
    async with EventTap(settings.kafka) as tap, running(rt):
        await rt.publisher.publish(event)
        rejected = await tap.next(events.JobRejected, event.job_id)
        finished = await tap.next(events.JobFinished, event.job_id)
    assert rejected.code == "unit_not_found"
    assert finished.outcome is events.Outcome.REJECTED
    job = await jobs.get(conn, event.job_id)
    assert job is not None
    assert job.state is jobs.JobState.REJECTED


async def test_malformed_upload_event_is_dead_lettered(settings: Settings) -> None:
    rt = Runtime(settings, "ingest")
    handlers.register(rt)
    async with EventTap(settings.kafka) as tap, running(rt):
        await rt.broker.publish(
            b'{"job_id": "not a uuid"',
            topic=f"{settings.kafka.prefix}rosterflow.upload-requested.v1",
            key=b"k",
        )

        async def letter() -> events.DeadLetter | None:
            found = tap.of(events.DeadLetter)
            return found[0] if found else None

        dead = await wait_for(letter, what="a dead letter")
    assert dead.consumer == "ingest"
    assert dead.reason.startswith("not a valid UploadRequested")


async def test_http_upload_streams_the_file_and_accepts_the_job(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    app = create_app(settings)
    body = "Personnummer;Förnamn;Efternamn\r\n".encode() * 3
    async with EventTap(settings.kafka) as tap, app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            response = await client.post(
                "/v1/imports",
                params={
                    "organisation_id": str(school.organisation_id),
                    "unit_id": str(school.unit_id),
                    "file_name": "elever.csv",
                },
                content=body,
                headers=bearer(mint_token([school.organisation_id])),
            )
            assert response.status_code == 202, response.text
            job_id = response.json()["id"]
            accepted = await tap.next(events.JobAccepted, UUID(job_id))
            status = await client.get(
                f"/v1/imports/{job_id}", headers=bearer(mint_token([school.organisation_id]))
            )
    assert accepted.file.sha256 == hashlib.sha256(body).hexdigest()
    assert accepted.file.size_bytes == len(body)
    assert status.json()["state"] == "received"
    assert "elever" not in accepted.file.key
