"""What the front door does, whether asked over HTTP or by an event.

Each command is safe to repeat: a second delivery finds the job already
moved on and changes nothing. What a command changes, it changes through
``rosterflow.jobs``, which writes the event that follows into the outbox in
the same transaction; the relay publishes it right after.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import UUID, uuid4

from aiokafka.errors import KafkaError
from faststream.exceptions import FastStreamException

from rosterflow import events, holds, jobs, outbox
from rosterflow.events import Outcome
from rosterflow.jobs import Job, JobState
from rosterflow.journal import archive
from rosterflow.runtime import Runtime
from rosterflow.storage import StorageError, check_objects
from services.ingest import store
from services.ingest.logic import (
    Rejection,
    check_file_key,
    check_request,
    check_stored_file,
)
from services.validator.mapping import Mapped

# How long an HTTP upload waits for the broker before it answers 503.
PUBLISH_TIMEOUT_SECONDS = 10.0
_UNREACHABLE = (KafkaError, FastStreamException, TimeoutError, OSError)


class PipelineUnavailable(Exception):
    """The broker could not take the job's first event; the job ended failed."""


async def accept_upload(
    rt: Runtime,
    event: events.UploadRequested,
    *,
    unreachable_fails: bool = False,
    keep_file: bool = False,
) -> Job:
    """Register the job, check the request, announce the outcome, supersede earlier jobs.

    ``unreachable_fails`` (HTTP): when the broker cannot be reached the job ends
    *failed* with ``pipeline_unavailable`` and its file is removed (unless
    ``keep_file``: an earlier job's file checked again is still that job's),
    rather than waiting in *received* for an event nobody published. An event
    delivered by Kafka instead retries (the broker is evidently there).
    """
    # An upload over HTTP was stored and hashed here; the platform's own event
    # names a file this service has to check before it trusts it.
    rejection = None if unreachable_fails else await _file_rejection(rt, event)
    job = await _register(rt, event, rejection)
    if not unreachable_fails:
        await rt.relay.flush(job.id)
    else:
        try:
            await asyncio.wait_for(
                rt.relay.flush(job.id, raise_errors=True), PUBLISH_TIMEOUT_SECONDS
            )
        except _UNREACHABLE as exc:
            await _abandon(rt, job, keep_file=keep_file)
            raise PipelineUnavailable(type(exc).__name__) from exc
    if job.state is not JobState.REJECTED:
        await supersede(rt, job)
    return job


async def _abandon(rt: Runtime, job: Job, *, keep_file: bool) -> None:
    """End the job nobody heard of: failed, its events never sent, its file removed
    (``keep_file``: the file is an earlier job's, checked again)."""
    async with rt.pool.acquire() as conn, conn.transaction():
        await jobs.finish(
            conn,
            job.id,
            Outcome.FAILED,
            "ingest:pipeline_unavailable",
            error_code="pipeline_unavailable",
            error_message="The import pipeline could not be reached; upload the file again.",
        )
        await outbox.discard(conn, job.id)
    if not keep_file:
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
        unit = await store.get_unit(conn, event.request.unit_id)
        # The unit's check first: it answers the same for a missing or a foreign unit.
        rejection = check_request(event.request, unit) or file_rejection
        refused = None if rejection is None else (rejection.code, rejection.message)
        # None: known before (a redelivery).
        job = await jobs.register(conn, event, rejected=refused) or await jobs.get(
            conn, event.job_id
        )
    assert job is not None
    return job


async def confirm(rt: Runtime, job_id: UUID, who: events.Requester) -> Job | None:
    async with rt.pool.acquire() as conn:
        # ImportConfirmed needs nothing of the job: the move's own statement writes it.
        moved = await jobs.transition(
            conn,
            job_id,
            JobState.AWAITING_CONFIRMATION,
            JobState.IMPORTING,
            f"confirmed by {who.user_id}",
            require_not_cancelled=True,
            by=who,
            confirmed_at=datetime.now(UTC),
        )
        if moved is None:
            return await jobs.get(conn, job_id)
    await rt.relay.flush(job_id)
    return moved


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
        if job.state in (JobState.RECEIVED, JobState.VALIDATING):
            # A check that stopped half-way (its validator died) may have left
            # part of its report: nobody will read it.
            for key in check_objects(job.organisation_id, job.id):
                await asyncio.to_thread(rt.store.delete, key)
    return True


async def decide_archive(
    rt: Runtime, job_id: UUID, approve: bool, who: events.Requester
) -> Job | None:
    """Record the administrator's decision on a held archive, once; the archiver acts on it."""
    async with rt.pool.acquire() as conn:
        async with conn.transaction():
            decided = await jobs.decide_archive(conn, job_id, approve, who)
        if decided is None:
            return await jobs.get(conn, job_id)
    await rt.relay.flush(job_id)
    return decided


async def undo_archive(rt: Runtime, job_id: UUID, who: events.Requester) -> Job | None:
    """Re-activate exactly the patients this job archived (and nobody archived since)."""
    async with rt.pool.acquire() as conn:
        async with conn.transaction():
            undone = None
            if await jobs.claim_undo(conn, job_id):
                reactivated = await archive.unarchive(conn, job_id)
                undone = await jobs.record_undo(conn, job_id, reactivated, who)
        if undone is None:
            return await jobs.get(conn, job_id)
    await rt.relay.flush(job_id)
    return undone


# A job whose file can be checked again under a new column mapping: one whose
# header did not name the format's columns (or named one twice), or one awaiting
# confirmation.
REMAPPABLE_ERRORS = frozenset(
    {
        "file_missing_column",
        "file_no_header",
        "file_wrong_format",
        "file_org_not_mapped",
        "file_repeated_column",
    }
)


def remappable(state: JobState, error_code: str | None, superseded_by: UUID | None) -> bool:
    """A job whose file can be checked again under a new column mapping."""
    if superseded_by is not None:
        return False
    return state is JobState.AWAITING_CONFIRMATION or (
        state is JobState.FAILED and error_code in REMAPPABLE_ERRORS
    )


class NotRemappable(Exception):
    """The job has no header to map, or has moved past its check."""


async def remap(
    rt: Runtime,
    job: Job,
    columns: dict[str, Mapped],
    org_sourced_id: str | None,
    who: events.Requester,
) -> Job:
    """Remember the administrator's column mapping and check the same file again.

    The mapping is saved for the unit, the format and the file's header, so the
    next file with that header is read with it. The check runs as a new job on
    the stored file, superseding this one (see docs/validation.md, *Column
    mapping*): the state machine stays forward-only, and this job's report and
    plan stay what they were.
    """
    found = job.column_mapping or {}
    shown, key = found.get("header"), found.get("header_key")
    if not shown or not key or not remappable(job.state, job.error_code, job.superseded_by):
        raise NotRemappable(job.state.value)
    async with rt.pool.acquire() as conn:
        await conn.execute(
            store.SAVE_COLUMN_MAPPING,
            job.unit_id,
            job.format,
            key,
            shown,
            columns,
            org_sourced_id,
            who.user_id,
        )
    event = events.UploadRequested(
        job_id=uuid4(), request=job.request, file=job.file, requested_by=who
    )
    again = await accept_upload(rt, event, unreachable_fails=True, keep_file=True)
    if job.state is JobState.FAILED:
        async with rt.pool.acquire() as conn:
            await jobs.supersede(conn, job.id, again.id)
    return again
