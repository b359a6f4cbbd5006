"""Limits that keep one bad job or a bad deployment from stalling the pipeline.

Against the real broker and database: an event too large for the broker ends
its job failed (never a retry for ever); text copied from a file into an event
is cut; when most messages fail, the service stops consuming and says so.
"""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

from rosterflow import events, jobs
from rosterflow.ops.http import router
from rosterflow.runtime import Runtime
from rosterflow.settings import Settings
from rosterflow.testing import running, seed_school, wait_for
from tests.support.pipeline import pipeline


async def test_an_event_too_large_for_the_broker_ends_the_job_failed(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)

    async def publishes_a_huge_event(event: events.JobAccepted) -> None:
        # 8,000 columns of 200 characters each: 1.6 MB, over the broker's 1 MiB.
        columns = {f"column_{i}": "x" * 200 for i in range(8000)}
        await probe.publisher.publish(
            events.JobValidated.for_job(
                event.job_id,
                counts=events.CheckCounts(rows=0, valid=0, invalid=0, empty=0, warnings=0),
                plan=events.Plan(create=0, update=0, unchanged=0, reactivate=0, archive=0),
                detected=events.Detected(
                    encoding="utf-8", delimiter=";", format="rosterflow_csv", columns=columns
                ),
                report=events.Report(valid_rows_key="v", invalid_rows_key="i"),
            )
        )

    probe = Runtime(settings, "validator")
    probe.consumer.handle(events.JobAccepted, publishes_a_huge_event)
    async with pipeline(settings, "ingest") as p, running(probe):
        upload = await p.upload(school, b"Personnummer;F\xc3\xb6rnamn;Efternamn\r\n")
        finished = await p.tap.next(events.JobFinished, upload.job_id)
        assert not p.tap.of(events.DeadLetter)
    assert finished.outcome is events.Outcome.FAILED
    assert finished.error_code == "event_too_large"
    job = await jobs.get(conn, upload.job_id)
    assert job is not None
    assert job.state is jobs.JobState.FAILED


def test_text_copied_from_a_file_into_an_event_is_cut() -> None:
    header = "Förnamn" * 200_000
    detected = events.Detected(
        encoding="utf-8", delimiter=";", format="rosterflow_csv", columns={"given_name": header}
    )
    assert len(detected.columns["given_name"]) == 200
    assert detected.columns["given_name"].endswith("…")
    detected_id = uuid4()
    finished = events.JobFinished.for_job(
        detected_id,
        outcome=events.Outcome.FAILED,
        error_code="file_missing_column",
        error_message=f"Column {header} is unknown",
    )
    assert isinstance(finished, events.JobFinished)
    assert finished.job_id == detected_id
    assert finished.error_message is not None
    assert len(finished.error_message) == 2000
    # A consumer reads back exactly what was published.
    again = events.JobFinished.model_validate_json(finished.model_dump_json())
    assert again == finished
    rejected = events.JobRejected.for_job(detected_id, code="c" * 500, message=header)
    assert isinstance(rejected, events.JobRejected)
    assert len(rejected.code) == 200
    assert len(rejected.message) == 2000


async def test_when_most_messages_fail_the_service_stops_and_says_so(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    school = await seed_school(conn)
    settings = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(
                update={
                    "dead_letter_window": 4,
                    "dead_letter_min_failures": 3,
                    "dead_letter_ratio": 0.5,
                }
            )
        }
    )
    handled: list[str] = []

    async def always_breaks(event: events.JobAccepted) -> None:
        handled.append(str(event.job_id))
        raise KeyError("a bug in this deployment")

    probe = Runtime(settings, "archiver")
    probe.consumer.handle(events.JobAccepted, always_breaks)
    app = FastAPI()
    app.include_router(router(probe))
    async with pipeline(settings, "ingest") as p, running(probe):
        uploads = [await p.upload(school, b"Personnummer\r\n") for _ in range(5)]
        # Two dead letters, then the third failure trips the limit: that message
        # and every later one are kept, and their jobs stay where they were.
        await wait_for(lambda: _halted(probe), within=30, what="the consumer halted")

        async def two_letters() -> bool:
            return len(p.tap.of(events.DeadLetter)) == 2

        await wait_for(two_letters, what="two dead letters")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ops") as client:
            ready = await client.get("/ready")
            scraped = (await client.get("/metrics")).text
        letters = p.tap.of(events.DeadLetter)
    assert ready.status_code == 503
    assert ready.json()["checks"]["consumer"].startswith("halted: 3 of the last 3")
    assert 'rosterflow_consumer_halted{service="archiver"} 1.0' in scraped
    assert REGISTRY.get_sample_value("rosterflow_consumer_halted", {"service": "archiver"}) == 1
    failed = await conn.fetchval(
        "SELECT count(*) FROM jobs WHERE id = ANY($1) AND state = 'failed'",
        [u.job_id for u in uploads],
    )
    assert failed == 2
    assert len(letters) == 2
    assert len(handled) == 3  # the fourth and fifth were never handed to the handler


async def _halted(rt: Runtime) -> bool:
    return rt.consumer.limit.halted is not None
