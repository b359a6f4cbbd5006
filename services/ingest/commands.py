"""What the front door does, whether asked over HTTP or by an event.

Each command is safe to repeat: a second delivery finds the job already
moved on and only re-publishes what the first one published.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import UUID

from aiokafka.errors import KafkaError
from faststream.exceptions import FastStreamException

from rosterflow import events, holds, jobs
from rosterflow.events import Outcome
from rosterflow.jobs import Job, JobState
from rosterflow.journal import archive
from rosterflow.runtime import Runtime
from rosterflow.storage import StorageError
from services.ingest import store
from services.ingest.logic import (
    Rejection,
    check_file_key,
    check_request,
    check_stored_file,
)

# How long an HTTP upload waits for the broker before it answers 503.
PUBLISH_TIMEOUT_SECONDS = 10.0
_UNREACHABLE = (KafkaError, FastStreamException, TimeoutError, OSError)


class PipelineUnavailable(Exception):
    """The broker could not take the job's first event; the job ended failed."""


async def accept_upload(
    rt: Runtime, event: events.UploadRequested, *, unreachable_fails: bool = False
) -> Job:
    """Register the job, check the request, announce the outcome, supersede earlier jobs.

    ``unreachable_fails`` (HTTP): when the broker cannot be reached the job ends
    *failed* with ``pipeline_unavailable`` and its file is removed, rather than
    waiting in *received* for an event nobody published. An event delivered by
    Kafka instead retries (the broker is evidently there).
    """
    # An upload over HTTP was stored and hashed here; the platform's own event
    # names a file this service has to check before it trusts it.
    rejection = None if unreachable_fails else await _file_rejection(rt, event)
    job = await _register(rt, event, rejection)
    if not unreachable_fails:
        await announce(rt, job)
    else:
        try:
            await asyncio.wait_for(announce(rt, job), PUBLISH_TIMEOUT_SECONDS)
        except _UNREACHABLE as exc:
            await _abandon(rt, job)
            raise PipelineUnavailable(type(exc).__name__) from exc
    if job.state is not JobState.REJECTED:
        await supersede(rt, job)
    return job


async def _abandon(rt: Runtime, job: Job) -> None:
    async with rt.pool.acquire() as conn:
        await jobs.finish(
            conn,
            job.id,
            Outcome.FAILED,
            "ingest:pipeline_unavailable",
            error_code="pipeline_unavailable",
            error_message="The import pipeline could not be reached; upload the file again.",
        )
    await asyncio.to_thread(rt.store.delete, job.file_key)


async def supersede(rt: Runtime, job: Job) -> None:
    """A newer upload of the same unit and school year replaces a job awaiting confirmation."""
    async with rt.pool.acquire() as conn:
        earlier = await jobs.superseded_jobs(conn, job)
    for earlier_id in earlier:
        async with rt.pool.acquire() as conn:
            # Named before it ends, so whoever sees it cancelled sees why.
            await jobs.supersede(conn, earlier_id, job.id)
        await rt.end_job(
            earlier_id,
            Outcome.CANCELLED,
            f"superseded by job {job.id}",
            error_code="superseded",
            error_message=f"A newer file was uploaded for the same unit and school year "
            f"(import {job.id}); this import was not applied.",
        )


async def _file_rejection(rt: Runtime, event: events.UploadRequested) -> Rejection | None:
    """Why the file an event names may not be imported (read only for a new job)."""
    rejection = check_file_key(event.request, event.file)
    if rejection is not None:
        return rejection
    async with rt.pool.acquire() as conn:
        if await jobs.get(conn, event.job_id) is not None:
            return None  # a redelivery: checked the first time
    limit = rt.settings.storage.max_upload_bytes
    try:
        stored = await asyncio.to_thread(rt.store.digest, event.file.key, limit)
    except StorageError:
        stored = None
    return check_stored_file(event.file, stored)


async def _register(
    rt: Runtime, event: events.UploadRequested, file_rejection: Rejection | None = None
) -> Job:
    async with rt.pool.acquire() as conn:
        job = await jobs.register(conn, event)
        unit = await store.get_unit(conn, event.request.unit_id)
        # The unit's check first: it answers the same for a missing or a foreign unit.
        rejection = check_request(event.request, unit) or file_rejection
        if rejection is not None:
            job = await jobs.finish(
                conn,
                event.job_id,
                Outcome.REJECTED,
                f"ingest:{rejection.code}",
                error_code=rejection.code,
                error_message=rejection.message,
            )
        if job is None:  # known before (a redelivery), or ended meanwhile
            job = await jobs.get(conn, event.job_id)
    assert job is not None
    return job


async def announce(rt: Runtime, job: Job) -> None:
    """(Re-)publish what the front door said about this job."""
    if job.state is JobState.REJECTED:
        await rt.publisher.publish(
            events.JobRejected.for_job(
                job.id, code=job.error_code or "rejected", message=job.error_message or ""
            )
        )
        await rt.publisher.publish(job.finished_event())
    elif job.state is JobState.RECEIVED:
        await rt.publisher.publish(
            events.JobAccepted.for_job(job.id, request=job.request, file=job.file)
        )


async def confirm(rt: Runtime, job_id: UUID, who: events.Requester) -> Job | None:
    async with rt.pool.acquire() as conn:
        job = await jobs.transition(
            conn,
            job_id,
            JobState.AWAITING_CONFIRMATION,
            JobState.IMPORTING,
            f"confirmed by {who.user_id}",
            require_not_cancelled=True,
            confirmed_at=datetime.now(UTC),
        ) or await jobs.get(conn, job_id)
    if job is not None and job.confirmed_at is not None and not job.terminal:
        await rt.publisher.publish(events.ImportConfirmed.for_job(job_id, confirmed_by=who))
    return job


async def cancel(
    rt: Runtime, job_id: UUID, who: events.Requester | None, *, broadcast: bool
) -> Job | None:
    """Record the cancel; end a job that is waiting or that no stage holds, tell the
    stage that holds it to stop.

    ``broadcast`` is False when the request came from the cancellation topic
    itself: running stages have heard it already.
    """
    async with rt.pool.acquire() as conn:
        state = await jobs.request_cancel(conn, job_id)
    if state is None:
        return None
    if state in (JobState.RECEIVED, JobState.AWAITING_CONFIRMATION):
        # Nothing runs for a waiting job; the stage that picks it up would end
        # it anyway, so end it now and the administrator hears at once.
        await rt.end_job(job_id, Outcome.CANCELLED, "cancelled while waiting")
    elif (await rt.job(job_id)).awaiting_archive_decision:
        await rt.end_job(
            job_id,
            Outcome.CANCELLED,
            "cancelled while the archive was held",
            error_code="cancelled_after_import",
            error_message="The import was applied; archiving did not happen.",
        )
    elif state not in jobs.TERMINAL and not await _end_unheld(rt, job_id) and broadcast:
        await rt.publisher.publish(events.CancelRequested.for_job(job_id, requested_by=who))
    async with rt.pool.acquire() as conn:
        return await jobs.get(conn, job_id)


async def _end_unheld(rt: Runtime, job_id: UUID) -> bool:
    """End a running job that no stage holds (its stage crashed, or its event waits
    in Kafka): nobody would hear the broadcast. False when a stage holds it."""
    async with rt.pool.acquire() as conn, holds.if_unheld(conn, job_id) as free:
        if not free:
            return False
        # Read under the hold: no stage moves the job meanwhile, so the words
        # fit the state it ends in.
        job = await rt.job(job_id)
        if job.state is JobState.ARCHIVING:
            await rt.end_job(
                job_id,
                Outcome.CANCELLED,
                "cancelled after the import committed",
                error_code="cancelled_after_import",
                error_message="The import was applied; archiving did not happen.",
            )
        else:
            await rt.end_job(job_id, Outcome.CANCELLED, f"cancelled while {job.state.value}")
    return True


async def decide_archive(
    rt: Runtime, job_id: UUID, approve: bool, who: events.Requester
) -> Job | None:
    """Record the administrator's decision on a held archive, once; the archiver acts on it."""
    async with rt.pool.acquire() as conn, conn.transaction():
        job = await jobs.decide_archive(conn, job_id, approve, who.user_id) or await jobs.get(
            conn, job_id
        )
    if job is not None and job.archive_decision is not None:
        await rt.publisher.publish(
            events.ArchiveDecided.for_job(
                job_id, approve=job.archive_decision == "approved", decided_by=who
            )
        )
    return job


async def undo_archive(rt: Runtime, job_id: UUID, who: events.Requester) -> Job | None:
    """Re-activate exactly the patients this job archived (and nobody archived since)."""
    async with rt.pool.acquire() as conn, conn.transaction():
        job = None
        if await jobs.claim_undo(conn, job_id):
            reactivated = await archive.unarchive(conn, job_id)
            job = await jobs.record_undo(conn, job_id, reactivated, who.user_id)
        job = job or await jobs.get(conn, job_id)
    if job is not None and job.archive_undone_count is not None:
        await rt.publisher.publish(
            events.ArchiveUndone.for_job(
                job_id, reactivated=job.archive_undone_count, undone_by=who
            )
        )
    return job
