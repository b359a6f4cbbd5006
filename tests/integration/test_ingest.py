"""The front door against the real broker and database."""

from __future__ import annotations

import hashlib
from uuid import UUID, uuid4

import asyncpg
import httpx

from rosterflow import events, jobs
from rosterflow.runtime import Runtime
from rosterflow.settings import Settings
from rosterflow.storage import ObjectStore, upload_key
from rosterflow.testing import (
    EventTap,
    bearer,
    mint_token,
    running,
    sample_roster,
    school_age_numbers,
    seed_school,
    wait_for,
)
from services.ingest import handlers
from services.ingest.app import create_app
from tests.support.pipeline import pipeline

WHO = events.Requester(user_id="u-1", name="Karin Admin", email="karin@example.org")


def upload_event(settings: Settings, org: UUID, unit: UUID) -> events.UploadRequested:
    """The platform's request for a file it stored under the organisation's prefix."""
    job_id = uuid4()
    key = upload_key(org, job_id)
    written = ObjectStore.from_settings(settings.storage).write_bytes(key, b"Personnummer\r\n")
    return events.UploadRequested(
        job_id=job_id,
        request=events.ImportRequest(organisation_id=org, unit_id=unit, school_year="2026/2027"),
        file=events.StoredFile(
            key=key, name="a.csv", sha256=written.sha256, size_bytes=written.size_bytes
        ),
        requested_by=WHO,
    )


async def test_upload_event_for_a_known_unit_is_accepted_once(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    event = upload_event(settings, school.organisation_id, school.unit_id)
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
    event = upload_event(settings, mine.organisation_id, theirs.unit_id)
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


async def test_an_upload_event_with_an_option_the_unit_does_not_allow_is_rejected(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn, level="compulsory")
    async with pipeline(settings, "ingest") as p:
        upload = await p.upload(school, b"Personnummer\r\n", treat_as_upper_secondary=True)
        rejected = await p.tap.next(events.JobRejected, upload.job_id)
        finished = await p.tap.next(events.JobFinished, upload.job_id)
    assert rejected.code == "option_not_allowed"
    assert finished.outcome is events.Outcome.REJECTED
    job = await jobs.get(conn, upload.job_id)
    assert job is not None
    assert job.state is jobs.JobState.REJECTED
    assert job.error_code == "option_not_allowed"
    assert "upper secondary" in (job.error_message or "")
    assert not p.tap.of(events.JobAccepted, upload.job_id)


async def test_a_new_upload_supersedes_the_job_awaiting_confirmation(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    roster = sample_roster(10, school_age_numbers()).to_csv().encode()
    async with pipeline(settings, "ingest", "validator") as p:
        earlier = await p.upload(school, roster)
        other_year = await p.upload(school, roster, school_year="2025/2026")
        await p.tap.next(events.JobValidated, earlier.job_id)
        await p.tap.next(events.JobValidated, other_year.job_id)
        corrected = await p.upload(school, roster)
        finished = await p.tap.next(events.JobFinished, earlier.job_id)
        await p.tap.next(events.JobValidated, corrected.job_id)
        # Over HTTP the same: the corrected file's upload ends the one before it.
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
                answer = await client.post(
                    "/v1/imports",
                    params={
                        "organisation_id": str(school.organisation_id),
                        "unit_id": str(school.unit_id),
                        "file_name": "elever-rättad.csv",
                        "school_year": "2026/2027",
                    },
                    content=roster,
                    headers=bearer(mint_token([school.organisation_id])),
                )
                assert answer.status_code == 202, answer.text
                again = await p.tap.next(events.JobFinished, corrected.job_id)
                view = await client.get(
                    f"/v1/imports/{corrected.job_id}",
                    headers=bearer(mint_token([school.organisation_id])),
                )
    assert finished.outcome is events.Outcome.CANCELLED
    assert finished.error_code == "superseded"
    assert str(corrected.job_id) in (finished.error_message or "")
    job = await jobs.get(conn, earlier.job_id)
    assert job is not None
    assert job.superseded_by == corrected.job_id
    # Another school year is another import: it still awaits confirmation.
    other = await jobs.get(conn, other_year.job_id)
    assert other is not None
    assert other.state is jobs.JobState.AWAITING_CONFIRMATION
    assert again.error_code == "superseded"
    assert view.json()["superseded_by"] == answer.json()["id"]
    assert view.json()["state"] == "cancelled"
