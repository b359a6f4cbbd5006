"""Re-driving a job: publish again the event that starts its next stage.

Safe because every handler is a compare-and-set on the job's state and the
re-published event carries its original (deterministic) id; the consumer's
processed-events entry for that event is cleared first, so the handler runs
again and finds where the job really is. The operator's ``ops redrive`` and
the ingest's sweep for stuck jobs (``rosterflow.healing``) both go through
``redrive``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rosterflow import events
from rosterflow.db import Connection
from rosterflow.jobs import Job, JobState
from rosterflow.kafka.broker import group_name
from rosterflow.settings import KafkaSettings
from rosterflow.topics import (
    ARCHIVE_DECIDED,
    IMPORT_APPLIED,
    IMPORT_CONFIRMED,
    JOB_ACCEPTED,
    JOB_FINISHED,
    topic_for,
)

OPERATOR = events.Requester(
    user_id="operator", name="rosterflow operator", email="operators@rosterflow.invalid"
)

# Which service consumes the event that starts each stage.
STARTS = {
    JOB_ACCEPTED.name: "validator",
    IMPORT_CONFIRMED.name: "importer",
    IMPORT_APPLIED.name: "archiver",
    ARCHIVE_DECIDED.name: "archiver",
    JOB_FINISHED.name: "notifier",
}

CLEAR_PROCESSED = "DELETE FROM processed_events WHERE consumer = $1 AND event_id = $2"

Publish = Callable[[events.Message], Awaitable[None]]


@dataclass(frozen=True)
class Redriven:
    event: events.Message
    service: str
    # The consumer had recorded the event as handled (and did not move the job).
    cleared: bool


def next_event(job: Job) -> events.Message | None:
    """The event whose consumer moves the job on from where it is."""
    state = job.state
    if state in (JobState.RECEIVED, JobState.VALIDATING):
        return events.JobAccepted.for_job(job.id, request=job.request, file=job.file)
    if state is JobState.IMPORTING:
        return events.ImportConfirmed.for_job(job.id, confirmed_by=OPERATOR)
    if state is JobState.ARCHIVING:
        if job.archive_held_at is not None and job.archive_decision is None:
            return None  # waits for an administrator
        if job.archive_decision is not None:
            return events.ArchiveDecided.for_job(
                job.id, approve=job.archive_decision == "approved", decided_by=OPERATOR
            )
        counts = events.ImportCounts.model_validate(
            job.import_counts or {"created": 0, "updated": 0, "unchanged": 0, "reactivated": 0}
        )
        return events.ImportApplied.for_job(
            job.id, counts=counts, archive_missing=job.archive_missing
        )
    if job.terminal:
        return job.finished_event()  # the notifier and the platform hear it again
    return None  # awaiting_confirmation: the administrator's move


def consumer_of(kafka: KafkaSettings, event: events.Message) -> tuple[str, str]:
    """The service that consumes the event, and its consumer group (the ledger's name)."""
    spec = topic_for(type(event))
    service = STARTS[spec.name]
    return service, group_name(kafka, service, spec)


async def redrive(
    conn: Connection, publish: Publish, kafka: KafkaSettings, job: Job
) -> Redriven | None:
    """Publish the job's next event again; None when the job waits for a person."""
    event = next_event(job)
    if event is None:
        return None
    service, group = consumer_of(kafka, event)
    cleared = await conn.execute(CLEAR_PROCESSED, group, event.event_id)
    # Cleared (committed) before the publish: the delivery must not find it.
    await publish(event)
    return Redriven(event, service, cleared != "DELETE 0")
