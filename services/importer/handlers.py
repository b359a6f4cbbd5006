"""Importer: apply a confirmed job's valid rows to the journal in one transaction."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from rosterflow import events, jobs, journal
from rosterflow.cancellation import JobCancelled
from rosterflow.events import Outcome
from rosterflow.jobs import Job, JobState
from rosterflow.kafka import PermanentError
from rosterflow.runtime import Runtime, record_progress
from rosterflow.storage import StorageError

SERVICE = "importer"


class _RolledBack(Exception):
    """Raised inside the import transaction to undo it."""


def register(rt: Runtime) -> None:
    async def on_confirmed(event: events.ImportConfirmed) -> None:
        job = await rt.job(event.job_id)
        if job.state is JobState.IMPORTING:
            if job.cancel_requested_at is not None:
                await rt.end_job(job.id, Outcome.CANCELLED, "cancelled before import")
                return
            job = await apply(rt, job)
        await announce(rt, job)

    rt.consumer.handle(events.ImportConfirmed, on_confirmed)


async def announce(rt: Runtime, job: Job) -> None:
    """(Re-)publish the importer's outcome for a job that got past it."""
    if job.state in (JobState.ARCHIVING, JobState.COMPLETED) and job.import_counts is not None:
        await rt.publisher.publish(
            events.ImportApplied.for_job(
                job.id,
                counts=events.ImportCounts.model_validate(job.import_counts),
                archive_missing=job.archive_missing,
            )
        )
    elif job.terminal:
        await rt.publisher.publish(job.finished_event())


async def apply(rt: Runtime, job: Job) -> Job:
    report = job.check_result or {}
    valid_key = report.get("report", {}).get("valid_rows_key")
    if not valid_key:
        raise PermanentError("report_missing", "the job has no check report to import")
    try:
        parquet = await asyncio.to_thread(rt.store.parquet_file, valid_key)
    except StorageError as exc:
        raise PermanentError("report_missing", str(exc)) from exc

    async with rt.pool.acquire() as conn:
        await conn.execute(
            "UPDATE jobs SET import_started_at = coalesce(import_started_at, $2) WHERE id = $1",
            job.id,
            datetime.now(UTC),
        )
        try:
            total, done = parquet.metadata.num_rows, 0
            await record_progress(rt, job, JobState.IMPORTING, done, total)
            async with journal.staging(conn), conn.transaction():

                async def progress(rows: int) -> None:
                    await record_progress(rt, job, JobState.IMPORTING, rows, total)

                await journal.stage_row_groups(
                    conn,
                    parquet.num_row_groups,
                    parquet.read_row_group,
                    before=lambda: rt.cancellations.check(job.id),
                    after=progress,
                )
                rt.cancellations.check(job.id)
                counts = await journal.apply_staged(
                    conn, job.organisation_id, job.unit_id, job.school_year
                )
                # The state change takes the job row's lock and re-checks the
                # cancel request: a cancel and this commit resolve one way.
                moved = await jobs.transition(
                    conn,
                    job.id,
                    JobState.IMPORTING,
                    JobState.ARCHIVING,
                    "import committed",
                    require_not_cancelled=True,
                    import_finished_at=datetime.now(UTC),
                    import_counts=counts.model_dump(),
                )
                if not moved:
                    raise _RolledBack
        except (JobCancelled, _RolledBack):
            pass  # rolled back: nothing of this import was applied
    return await rt.settle(
        job.id, JobState.IMPORTING, "cancelled during import; nothing was applied"
    )
