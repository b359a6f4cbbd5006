"""Re-driving a job: send again, through the outbox, the event that starts its next stage.

Safe because every handler is a compare-and-set on the job's state and the
event carries its original (deterministic) id; every consumer's
processed-events entry for that event is cleared first, so the handler runs
again and finds where the job really is. Which event that is, and writing it
into the outbox, is ``rosterflow.jobs``' (``next_event``, ``redrive``), as for
every transition; here it is also published at once. The operator's
``ops redrive`` and the ingest's sweep for stuck jobs (``rosterflow.healing``)
both go through ``redrive``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rosterflow import db, events, jobs, outbox
from rosterflow.db import Connection
from rosterflow.jobs import OPERATOR, Job, next_event
from rosterflow.kafka.broker import group_name
from rosterflow.settings import KafkaSettings
from rosterflow.topics import (
    ARCHIVE_DECIDED,
    IMPORT_APPLIED,
    IMPORT_CONFIRMED,
    JOB_ACCEPTED,
    JOB_FINISHED,
    SERVICES,
    topic_for,
)

__all__ = ["OPERATOR", "Redriven", "consumer_of", "next_event", "redrive"]

# Which service consumes the event that starts each stage.
STARTS = {
    JOB_ACCEPTED.name: "validator",
    IMPORT_CONFIRMED.name: "importer",
    IMPORT_APPLIED.name: "archiver",
    ARCHIVE_DECIDED.name: "archiver",
    JOB_FINISHED.name: "notifier",
}

Publish = Callable[[events.Message], Awaitable[None]]


@dataclass(frozen=True)
class Redriven:
    event: events.Message
    service: str
    # The consumer had recorded the event as handled (and did not move the job).
    cleared: bool


def ledgers_of(kafka: KafkaSettings, event: events.Message) -> list[str]:
    """The consumer groups of this project that read the event: the ledger's names."""
    spec = topic_for(type(event))
    return [group_name(kafka, s, spec) for s in spec.consumers if s in SERVICES]


def consumer_of(kafka: KafkaSettings, event: events.Message) -> tuple[str, str]:
    """The service that consumes the event, and its consumer group (the ledger's name)."""
    spec = topic_for(type(event))
    service = STARTS[spec.name]
    return service, group_name(kafka, service, spec)


async def redrive(
    conn: Connection, publish: Publish, kafka: KafkaSettings, job: Job
) -> Redriven | None:
    """Send the job's next event again; None when the job waits for a person."""
    event = next_event(job)
    if event is None:
        return None
    service, group = consumer_of(kafka, event)
    cleared = await conn.fetchrow(db.EVENT_SEEN, group, event.event_id) is not None
    # Cleared and written (committed) before the publish: the delivery must not find it.
    if await jobs.redrive(conn, job, lambda e: ledgers_of(kafka, e)) is None:
        return None
    rows = await outbox.claim(conn, job.id)
    for row in rows:
        await publish(outbox.event_of(row))
    await outbox.delete_sent(conn, [row["id"] for row in rows])
    return Redriven(event, service, cleared)
