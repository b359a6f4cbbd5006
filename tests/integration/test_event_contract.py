"""The platform's requests as the contract states them, on the real broker.

Each case is published as the journal platform would publish it, and the test
asserts the event the platform then receives: a request whose job id can be
read always ends that job with JobRejected and JobFinished when it cannot be
carried out, never in silence.
"""

from __future__ import annotations

import json
from uuid import UUID, uuid4

import asyncpg
import pytest

from rosterflow import events, jobs
from rosterflow.kafka.broker import topic_name
from rosterflow.settings import Settings
from rosterflow.storage import upload_key
from rosterflow.testing import School, seed_school, wait_for
from rosterflow.topics import UPLOAD_REQUESTED
from tests.support.pipeline import Pipeline, final_job, new_admin, pipeline, stored_upload

CONTENT = "Personnummer;Förnamn;Efternamn\r\n".encode()


async def rejected(p: Pipeline, job_id: UUID) -> tuple[events.JobRejected, events.JobFinished]:
    """What the platform hears about a refused request."""
    return await p.tap.next(events.JobRejected, job_id), await p.tap.next(
        events.JobFinished, job_id
    )


def with_file(event: events.UploadRequested, **changes: object) -> events.UploadRequested:
    return event.model_copy(update={"file": event.file.model_copy(update=changes)})


async def test_a_file_under_another_organisations_prefix_is_refused(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    mine, theirs = await seed_school(conn), await seed_school(conn, name="Annan skola")
    async with pipeline(settings, "ingest") as p:
        # Organisation A's stored file, named in a request for organisation B.
        their_file = stored_upload(p.any.store, theirs, CONTENT)
        request = stored_upload(p.any.store, mine, CONTENT)
        request = with_file(request, key=their_file.file.key)
        await p.any.publisher.publish(request)
        rejection, finished = await rejected(p, request.job_id)
        # A key that climbs out of the organisation's prefix.
        climbing = stored_upload(p.any.store, mine, CONTENT)
        climbing = with_file(
            climbing, key=f"orgs/{mine.organisation_id}/../{theirs.organisation_id}/x"
        )
        await p.any.publisher.publish(climbing)
        climbed, _ = await rejected(p, climbing.job_id)
        assert not p.tap.of(events.JobAccepted)
    assert rejection.code == "file_outside_organisation"
    assert climbed.code == "file_outside_organisation"
    assert finished.outcome is events.Outcome.REJECTED
    assert finished.error_code == "file_outside_organisation"
    assert (await final_job(conn, request.job_id)).state is jobs.JobState.REJECTED


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"size_bytes": len(CONTENT) + 1}, "file_size_mismatch"),
        ({"sha256": "0" * 64}, "file_checksum_mismatch"),
        ({"key": "missing"}, "file_missing"),
    ],
)
async def test_the_stored_file_must_be_the_one_the_request_describes(
    settings: Settings, conn: asyncpg.Connection, change: dict[str, object], code: str
) -> None:
    school = await seed_school(conn)
    async with pipeline(settings, "ingest") as p:
        request = stored_upload(p.any.store, school, CONTENT)
        if change.get("key") == "missing":
            change = {"key": upload_key(school.organisation_id, uuid4())}
        request = with_file(request, **change)
        await p.any.publisher.publish(request)
        rejection, finished = await rejected(p, request.job_id)
        assert not p.tap.of(events.JobAccepted)
    assert rejection.code == code
    assert finished.outcome is events.Outcome.REJECTED
    assert finished.error_code == code


async def test_a_reused_event_id_for_another_job_is_rejected_not_dropped(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school: School = await seed_school(conn)
    async with pipeline(settings, "ingest") as p:
        first = stored_upload(p.any.store, school, CONTENT)
        await p.any.publisher.publish(first)
        await p.tap.next(events.JobAccepted, first.job_id)
        second = stored_upload(p.any.store, school, CONTENT).model_copy(
            update={"event_id": first.event_id}
        )
        await p.any.publisher.publish(second)
        rejection, finished = await rejected(p, second.job_id)
        # The same request again (a redelivery) stays what it was: accepted once.
        await p.any.publisher.publish(first)
        assert len(p.tap.of(events.JobAccepted, first.job_id)) == 1
    assert rejection.code == "event_id_reused"
    assert str(first.event_id) in rejection.message
    assert finished.outcome is events.Outcome.REJECTED
    assert finished.error_code == "event_id_reused"
    assert (await final_job(conn, first.job_id)).state is jobs.JobState.RECEIVED


async def test_an_invalid_request_whose_job_id_can_be_read_is_answered(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with pipeline(settings, "ingest") as p:
        request = stored_upload(p.any.store, school, CONTENT, admin=new_admin())
        body = json.loads(request.model_dump_json())
        body["priority"] = "high"  # one unknown field
        await p.any.broker.publish(
            json.dumps(body).encode(),
            topic=topic_name(settings.kafka, UPLOAD_REQUESTED),
            key=str(request.job_id).encode(),
        )
        rejection, finished = await rejected(p, request.job_id)

        async def letter() -> events.DeadLetter | None:
            found = p.tap.of(events.DeadLetter, request.job_id)
            return found[0] if found else None

        dead = await wait_for(letter, what="the dead letter for the operators")
    assert rejection.code == "invalid_event"
    assert "priority" in rejection.message
    assert "high" not in rejection.message  # names the field, never its value
    assert finished.outcome is events.Outcome.REJECTED
    assert finished.error_code == "invalid_event"
    assert dead.reason.startswith("not a valid UploadRequested: priority")


async def test_an_invalid_request_for_a_running_job_ends_it_failed(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    async with pipeline(settings, "ingest") as p:
        upload = await p.upload(school, CONTENT)
        await p.tap.next(events.JobAccepted, upload.job_id)
        await p.any.broker.publish(
            json.dumps({"job_id": str(upload.job_id), "requested_by": "nobody"}).encode(),
            topic=f"{settings.kafka.prefix}rosterflow.confirmation-requested.v1",
            key=str(upload.job_id).encode(),
        )
        finished = await p.tap.next(events.JobFinished, upload.job_id)
    assert finished.outcome is events.Outcome.FAILED
    assert finished.error_code == "invalid_event"
    assert finished.error_message is not None
    assert "not valid" in finished.error_message
