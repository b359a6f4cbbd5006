"""Validator: check the uploaded file, write the report, compute the plan."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime

from rosterflow import events, jobs
from rosterflow.cancellation import JobCancelled
from rosterflow.events import Outcome
from rosterflow.jobs import Job, JobState
from rosterflow.journal import job_tables
from rosterflow.ops import metrics
from rosterflow.runtime import Runtime, record_progress
from rosterflow.storage import StorageError, check_objects, report_keys
from services.validator import errors, plan, store
from services.validator.check import CheckResult, Limits, Stopped, check_file
from services.validator.errors import FileError
from services.validator.identity import IdentityError
from services.validator.mapping import Mappings
from services.validator.messages import RowCode
from services.validator.report import ReportWriter, ValidRowsMirror
from services.validator.rows import Rules
from services.validator.source import Upload

SERVICE = "validator"
# Error codes kept with the job for the email, commonest first.
REASONS_KEPT = 10

log = logging.getLogger(__name__)


def register(rt: Runtime) -> None:
    async def on_accepted(event: events.JobAccepted) -> bool:
        async with rt.pool.acquire() as conn:
            job = await jobs.transition(
                conn,
                event.job_id,
                JobState.RECEIVED,
                JobState.VALIDATING,
                "validation started",
                validation_started_at=datetime.now(UTC),
            ) or await jobs.get(conn, event.job_id)
        if job is None:
            return False  # not registered (yet): an accepted job always is, first
        # VALIDATING again after a crash: the check is repeatable, run it anew.
        if job.state is JobState.VALIDATING:
            await validate(rt, job)
        return True

    rt.handle(events.JobAccepted, on_accepted, hold=True)


async def validate(rt: Runtime, job: Job) -> Job:
    valid_key, invalid_key = report_keys(job.organisation_id, job.id)
    try:
        if job.cancel_requested_at is not None:
            raise JobCancelled(job.id)
        async with rt.pool.acquire() as conn:
            unit = await store.unit_of(conn, job.unit_id, job.format)
            # A guardian file's rows are for the unit's students as they are now.
            students, protected = (
                await store.active_students(conn, job.unit_id)
                if job.guardians_only
                else (None, None)
            )
        if unit is None:
            await rt.end_job(
                job.id,
                Outcome.FAILED,
                "validator:unit_not_found",
                error_code="unit_not_found",
                error_message="The unit no longer exists.",
            )
            return await rt.job(job.id)
        level, mappings = unit
        loop = asyncio.get_running_loop()
        recorded: list[concurrent.futures.Future[None]] = []

        def progress(rows: int) -> None:
            # From the checking thread; the file's row count is known only at its end.
            recorded.append(
                asyncio.run_coroutine_threadsafe(
                    record_progress(rt, job, JobState.VALIDATING, rows, None), loop
                )
            )

        # A large job's rows go into its own table as they are checked; the
        # table exists (committed) only once the plan is.
        async with plan.JobRowsFeed(rt, job) as feed:
            try:
                rules = Rules(
                    date.today(), level, job.treat_as_upper_secondary, students, protected
                )
                result = await asyncio.to_thread(_check, rt, job, rules, progress, feed, mappings)
            finally:
                await asyncio.gather(*(asyncio.wrap_future(f) for f in recorded))
            planned = await plan.compute(rt, job, valid_key, invalid_key, feed)
        check_result = jobs.CheckResult(
            counts=result.counts,
            plan=planned.plan,
            detected=result.detected,
            report=events.Report(
                valid_rows_key=valid_key,
                invalid_rows_key=invalid_key,
                archive_candidates_key=planned.archive_candidates_key,
            ),
            # Counted during the check, so that nobody reads the report again for them.
            reasons=[
                jobs.Reason.model_validate(dataclasses.asdict(r))
                for r in result.reasons[:REASONS_KEPT]
            ],
            staging=planned.staging,
        )
        async with rt.pool.acquire() as conn:
            moved = await jobs.transition(
                conn,
                job.id,
                JobState.VALIDATING,
                JobState.AWAITING_CONFIRMATION,
                "validation finished",
                require_not_cancelled=True,
                job=job,
                validation_finished_at=datetime.now(UTC),
                check_result=check_result,
                # Not published: the file's columns the format did not recognise,
                # with suggestions, for the administrator's mapping (ingest's API).
                column_mapping=None if result.columns is None else result.columns.as_json(),
            )
            if moved is None and planned.staging.size is jobs.Staging.LARGE:
                await job_tables.drop_job_table(conn, job.id)  # cancelled meanwhile
        if moved is not None:
            metrics.skipped_row_counts(result.skipped)
            return moved
    except FileError as exc:
        # A header the format did not match: what the administrator maps the
        # columns from, to check the same file again.
        mapping = {} if exc.columns is None else {"column_mapping": exc.columns}
        await rt.end_job(
            job.id,
            Outcome.FAILED,
            f"validator:{exc.code}",
            error_code=exc.code,
            error_message=exc.text("en" if job.requested_by_language == "en" else "sv"),
            **mapping,
        )
    except (JobCancelled, Stopped):
        for key in check_objects(job.organisation_id, job.id):
            await asyncio.to_thread(rt.store.delete, key)
        await rt.end_job(job.id, Outcome.CANCELLED, "cancelled during validation")
    return await rt.settle(job.id, JobState.VALIDATING, "cancelled during validation")


# Every reason at zero from the start: increase() and rate() then see a reason's first rows.
for _code in (*IdentityError, *RowCode):
    metrics.ROWS_SKIPPED.labels(_code.value)


def _check(
    rt: Runtime,
    job: Job,
    rules: Rules,
    progress: Callable[[int], None],
    mirror: ValidRowsMirror,
    mappings: Mappings,
) -> CheckResult:
    valid_key, invalid_key = report_keys(job.organisation_id, job.id)
    try:
        size = rt.store.size(job.file_key)
    except StorageError as exc:
        raise errors.missing_upload() from exc
    return check_file(
        Upload(lambda: rt.store.open_input(job.file_key), size),
        job.request,
        rules,
        limits=Limits(
            max_rows=rt.settings.imports.max_rows,
            max_bytes=rt.settings.storage.max_upload_bytes,
        ),
        report=ReportWriter(rt.store, valid_key, invalid_key, mirror),
        stop=lambda: rt.cancellations.is_cancelled(job.id),
        progress=progress,
        mappings=mappings,
    )
