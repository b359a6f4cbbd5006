"""Archiver: archive the unit's patients missing from the file, after the import committed."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import pyarrow as pa

from rosterflow import events, jobs, outbox
from rosterflow.events import Outcome
from rosterflow.failures import PermanentError
from rosterflow.jobs import Job, JobState
from rosterflow.journal import archive, merge, staging
from rosterflow.runtime import Runtime
from rosterflow.storage import ObjectStore, StorageError

SERVICE = "archiver"


def register(rt: Runtime) -> None:
    async def on_applied(event: events.ImportApplied) -> bool:
        return await proceed(rt, await rt.job(event.job_id))

    async def on_decided(event: events.ArchiveDecided) -> bool:
        # The decision is on the job row already (ingest recorded it).
        return await proceed(rt, await rt.job(event.job_id))

    rt.handle(events.ImportApplied, on_applied, hold=True)
    rt.handle(events.ArchiveDecided, on_decided, hold=True)


async def proceed(rt: Runtime, job: Job) -> bool:
    """Archive and complete an archiving job: False when the job has not got that far."""
    if job.state is JobState.ARCHIVING:
        await finish(rt, job)
    return job.state is JobState.ARCHIVING or job.terminal


def file_identities(store: ObjectStore, job: Job) -> list[pa.Array]:
    """Every identity number in the file, from valid and invalid rows alike.

    A patient whose row merely had a typo must not be archived.
    """
    if job.check_result is None:
        raise PermanentError("report_missing", "the job has no check report")
    report = job.check_result.report
    found: list[pa.Array] = []
    for key in (report.valid_rows_key, report.invalid_rows_key):
        try:
            table = store.parquet_file(key).read(columns=["identity_number"])
        except StorageError as exc:
            raise PermanentError(
                "report_missing",
                f"The job's check report could not be read ({type(exc).__name__}).",
            ) from exc
        found.extend(table.column("identity_number").chunks)
    return found


async def finish(rt: Runtime, job: Job) -> None:
    if job.cancel_requested_at is not None or rt.cancellations.is_cancelled(job.id):
        await rt.end_job(
            job.id,
            Outcome.CANCELLED,
            "cancelled after the import committed",
            error_code="cancelled_after_import",
            error_message="The import was applied; archiving did not happen.",
        )
        return
    try:
        done = await archive_and_complete(rt, job)
    except _CancelWon:
        await rt.end_job(
            job.id,
            Outcome.CANCELLED,
            "cancelled during archiving",
            error_code="cancelled_after_import",
            error_message="The import was applied; archiving was rolled back.",
        )
        return
    if isinstance(done, archive.ArchivePlan):
        return  # held: ArchiveHeld went into the outbox with the hold
    assert done.terminal


async def archive_and_complete(rt: Runtime, job: Job) -> archive.ArchivePlan | Job:
    """Archive and complete the job in one transaction: the completed job, or the plan when held."""
    error_code = error_message = None
    archived = 0
    # Without archive_missing the completing transition is the only write, and
    # one statement: no transaction around it (BEGIN and COMMIT were two more
    # round trips a job).
    async with (
        rt.pool.acquire() as conn,
        staging.staging(conn) if job.archive_missing else contextlib.nullcontext(),
        outbox.transaction(conn) if job.archive_missing else contextlib.nullcontext(),
    ):
        if job.archive_missing:
            identities = await asyncio.to_thread(file_identities, rt.store, job)
            await merge.lock_organisation(conn, job.organisation_id)
            await staging.stage_file_identities(conn, identities)
            plan = await archive.archive_plan(
                conn,
                job.organisation_id,
                job.unit_id,
                rt.settings.imports.default_archive_hold_ratio,
            )
            if plan.held and job.archive_decision is None:
                # None when held already: its ArchiveHeld was written then.
                await jobs.hold_archive(
                    conn, job.id, len(plan.patient_ids), plan.active, float(plan.hold_ratio)
                )
                return plan
            if plan.held and job.archive_decision == "declined":
                error_code = "archive_not_approved"
                error_message = (
                    f"Archiving {len(plan.patient_ids)} of {plan.active} active patients "
                    "was not approved; nobody was archived."
                )
            else:
                archived = await archive.archive(conn, job.unit_id, plan.patient_ids, job.id)
        now = datetime.now(UTC)
        completed = await jobs.transition(
            conn,
            job.id,
            JobState.ARCHIVING,
            JobState.COMPLETED,
            "archiving done" if job.archive_missing else "nothing to archive",
            require_not_cancelled=True,
            job=job,
            archived_at=now if job.archive_missing else None,
            finished_at=now,
            archived_count=archived,
            error_code=error_code,
            error_message=error_message,
        )
        if completed is None:
            # A cancel won the race for the job row: the rollback undoes the archiving.
            raise _CancelWon
    return completed


class _CancelWon(Exception):
    pass
