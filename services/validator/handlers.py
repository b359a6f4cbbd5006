"""Validator: check the uploaded file, write the report, compute the plan."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

from rosterflow import events, jobs, journal
from rosterflow.cancellation import JobCancelled
from rosterflow.events import Outcome
from rosterflow.jobs import Job, JobState
from rosterflow.runtime import Runtime
from rosterflow.storage import StorageError, report_keys
from services.validator.check import CheckResult, Stopped, check_file
from services.validator.reading import FileError

SERVICE = "validator"


def register(rt: Runtime) -> None:
    async def on_accepted(event: events.JobAccepted) -> None:
        async with rt.pool.acquire() as conn:
            await jobs.transition(
                conn,
                event.job_id,
                JobState.RECEIVED,
                JobState.VALIDATING,
                "validation started",
                validation_started_at=datetime.now(UTC),
            )
            job = await jobs.get(conn, event.job_id)
        if job is None:
            return  # an accepted job is always registered first; nothing to do
        # VALIDATING again after a crash: the check is repeatable, run it anew.
        if job.state is JobState.VALIDATING:
            job = await validate(rt, job)
        await announce(rt, job)

    rt.consumer.handle(events.JobAccepted, on_accepted)


async def announce(rt: Runtime, job: Job) -> None:
    """(Re-)publish what the validator said about this job."""
    if job.validation_finished_at is not None and job.check_result is not None:
        await rt.publisher.publish(
            events.JobValidated.for_job(job.id, **_published_part(job.check_result))
        )
    if job.terminal:
        await rt.publisher.publish(job.finished_event())


def _published_part(check_result: dict[str, object]) -> dict[str, object]:
    return {k: check_result[k] for k in ("counts", "plan", "detected", "report")}


async def validate(rt: Runtime, job: Job) -> Job:
    try:
        if job.cancel_requested_at is not None:
            raise JobCancelled(job.id)
        result = await asyncio.to_thread(_check, rt, job)
        valid_key, invalid_key = report_keys(job.organisation_id, job.id)
        await asyncio.to_thread(rt.store.write_table, valid_key, result.valid)
        await asyncio.to_thread(rt.store.write_table, invalid_key, result.issues)
        plan = await _plan(rt, job, result)
        check_result = {
            "counts": result.counts.model_dump(),
            "plan": plan.model_dump(),
            "detected": result.detected.model_dump(mode="json"),
            "report": {"valid_rows_key": valid_key, "invalid_rows_key": invalid_key},
        }
        async with rt.pool.acquire() as conn:
            await jobs.transition(
                conn,
                job.id,
                JobState.VALIDATING,
                JobState.AWAITING_CONFIRMATION,
                "validation finished",
                require_not_cancelled=True,
                validation_finished_at=datetime.now(UTC),
                check_result=check_result,
            )
    except FileError as exc:
        await rt.end_job(
            job.id,
            Outcome.FAILED,
            f"validator:{exc.code}",
            error_code=exc.code,
            error_message=exc.message,
        )
    except (JobCancelled, Stopped):
        await rt.end_job(job.id, Outcome.CANCELLED, "cancelled during validation")
    return await rt.settle(job.id, JobState.VALIDATING, "cancelled during validation")


def _check(rt: Runtime, job: Job) -> CheckResult:
    try:
        return check_file(
            lambda: rt.store.open_input(job.file_key),
            job.request,
            today=date.today(),
            max_rows=rt.settings.imports.max_rows,
            stop=lambda: rt.cancellations.is_cancelled(job.id),
        )
    except StorageError as exc:
        raise FileError("file_missing", "The uploaded file is no longer in storage.") from exc


async def _plan(rt: Runtime, job: Job, result: CheckResult) -> events.Plan:
    """Apply in a transaction that is rolled back: the plan is what confirming will do."""
    async with rt.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await journal.create_staging(conn)
            for batch in result.valid.to_batches(max_chunksize=rt.settings.imports.batch_rows):
                await journal.stage_rows(conn, batch)
            counts = await journal.apply_staged(
                conn, job.organisation_id, job.unit_id, job.school_year
            )
            archive = 0
            held = False
            if job.archive_missing:
                await journal.stage_file_identities(conn, result.file_identities())
                plan = await journal.archive_plan(
                    conn,
                    job.organisation_id,
                    job.unit_id,
                    rt.settings.imports.default_archive_hold_ratio,
                )
                archive, held = len(plan.patient_ids), plan.held
        finally:
            await tx.rollback()
    return events.Plan(
        create=counts.created,
        update=counts.updated,
        unchanged=counts.unchanged,
        reactivate=counts.reactivated,
        archive=archive,
        archive_held=held,
    )
