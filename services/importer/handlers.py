"""Importer: apply a confirmed job's valid rows to the journal in one transaction."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

import pyarrow.parquet as pq

from rosterflow import events, jobs, outbox
from rosterflow.cancellation import JobCancelled
from rosterflow.db import Connection
from rosterflow.events import Outcome
from rosterflow.failures import PermanentError
from rosterflow.jobs import Job, JobState, Staging
from rosterflow.journal import arrays, job_tables, merge, staging
from rosterflow.report import STAGED_COLUMNS
from rosterflow.runtime import Runtime, record_progress
from rosterflow.storage import StorageError

SERVICE = "importer"

log = logging.getLogger(__name__)


class _RolledBack(Exception):
    """Raised inside the import transaction to undo it."""


def register(rt: Runtime) -> None:
    async def on_confirmed(event: events.ImportConfirmed) -> bool:
        job = await rt.job(event.job_id)
        if job.state is JobState.IMPORTING:
            if job.cancel_requested_at is not None:
                await rt.end_job(job.id, Outcome.CANCELLED, "cancelled before import")
            else:
                await apply(rt, job)
        return job.state not in _BEFORE

    rt.handle(events.ImportConfirmed, on_confirmed, hold=True)


# States the job passes before the importer's: a confirmation cannot find it there.
_BEFORE = frozenset({JobState.RECEIVED, JobState.VALIDATING, JobState.AWAITING_CONFIRMATION})


def _check(job: Job) -> jobs.CheckResult:
    if job.check_result is None:
        raise PermanentError("report_missing", "the job has no check report to import")
    return job.check_result


def _report(rt: Runtime, job: Job) -> pq.ParquetFile:
    """The check report's valid rows (opened: its footer read)."""
    try:
        return rt.store.parquet_file(_check(job).report.valid_rows_key)
    except StorageError as exc:
        raise PermanentError(
            "report_missing", f"The job's check report could not be read ({type(exc).__name__})."
        ) from exc


async def _stage(
    rt: Runtime, conn: Connection, job: Job, parquet: pq.ParquetFile | None
) -> arrays.Staged:
    """The staged rows to apply, as the plan decided: its own table when it still
    holds them all, the report's rows as arrays for a small set, else the
    report's rows in the session's table."""
    planned = _check(job).staging
    if planned.size is Staging.LARGE:
        found = await job_tables.job_table_rows(conn, job.id)
        if found is not None and found == planned.rows:
            await record_progress(rt, job, JobState.IMPORTING, found, found)
            return job_tables.job_table(job.id)
        # PostgreSQL restarted from a crash (which empties UNLOGGED tables), or
        # the plan waited longer than its table is kept: the session's table
        # takes any number of rows.
        log.info(
            "the plan's staged rows are gone; staging the report again",
            extra={"job_id": str(job.id), "planned": planned.rows, "found": found},
        )
    report = parquet if parquet is not None else await asyncio.to_thread(_report, rt, job)
    if planned.size is Staging.SMALL:
        # Applied by one statement in a few milliseconds: no progress to show
        # (it was two more writes, on a connection of their own, every job).
        rows = await asyncio.to_thread(
            lambda: arrays.RowArrays.of(report.read(columns=list(STAGED_COLUMNS)))
        )
        rt.cancellations.check(job.id)
        return rows

    total = report.metadata.num_rows
    await record_progress(rt, job, JobState.IMPORTING, 0, total)

    async def progress(rows: int) -> None:
        await record_progress(rt, job, JobState.IMPORTING, rows, total)

    await staging.stage_row_groups(
        conn,
        report.num_row_groups,
        report.read_row_group,
        before=lambda: rt.cancellations.check(job.id),
        after=progress,
    )
    return staging.STAGED


async def apply(rt: Runtime, job: Job) -> Job:
    size = _check(job).staging.size
    # Without the plan's table the report is needed: fail before anything starts.
    parquet = None if size is Staging.LARGE else await asyncio.to_thread(_report, rt, job)

    async with rt.pool.acquire() as conn:
        await jobs.start_import(conn, job.id)
        try:
            # A small set touches no temporary table: no staging() around it.
            async with (
                contextlib.nullcontext() if size is Staging.SMALL else staging.staging(conn),
                outbox.transaction(conn),
            ):
                staged = await _stage(rt, conn, job, parquet)
                rt.cancellations.check(job.id)
                counts = await merge.apply_staged(
                    conn,
                    job.organisation_id,
                    job.unit_id,
                    job.school_year,
                    staged,
                    guardians_only=job.guardians_only,
                )
                if size is Staging.LARGE:
                    # Dropped with the commit, whichever rows were applied.
                    await job_tables.drop_job_table(conn, job.id)
                # The state change takes the job row's lock and re-checks the
                # cancel request: a cancel and this commit resolve one way.
                moved = await jobs.transition(
                    conn,
                    job.id,
                    JobState.IMPORTING,
                    JobState.ARCHIVING,
                    "import committed",
                    require_not_cancelled=True,
                    job=job,
                    import_finished_at=datetime.now(UTC),
                    import_counts=counts.model_dump(),
                )
                if not moved:
                    raise _RolledBack
        except (JobCancelled, _RolledBack):
            pass  # rolled back: nothing of this import was applied
        else:
            assert moved is not None
            return moved  # committed: the job row as the transition left it
    return await rt.settle(
        job.id, JobState.IMPORTING, "cancelled during import; nothing was applied"
    )
