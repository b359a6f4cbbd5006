"""The plan: what confirming would do, computed against the journal's current state.

The valid rows are staged and classified with the importer's own join
(nothing is written), so the plan is exactly what the importer will do
against the same journal state. With
*archive missing* the list of who would be archived is written next to the
report, for the administrator to see before anything happens.

A plan of many rows stages them into a table of the job's own, which it
leaves for the importer (``PlanResult.staged_rows``): the importer then
applies from it instead of staging the report's rows a second time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pyarrow as pa

from rosterflow import events, journal
from rosterflow.jobs import Job
from rosterflow.runtime import Runtime
from rosterflow.storage import ObjectStore
from services.validator import store
from services.validator.report import archive_key


@dataclass(frozen=True)
class PlanResult:
    plan: events.Plan
    archive_candidates_key: str | None
    # The rows left in the job's own staging table; None when none was made.
    staged_rows: int | None = None


def _read_identities(objects: ObjectStore, keys: tuple[str, str]) -> list[pa.Array]:
    """Every identity number in the report, valid row or not: only the one column is read."""
    found = []
    for key in keys:
        column = objects.parquet_file(key).read(columns=["identity_number"]).column(0)
        found.append(column.combine_chunks())
    return found


async def compute(rt: Runtime, job: Job, valid_key: str, invalid_key: str) -> PlanResult:
    parquet = await asyncio.to_thread(rt.store.parquet_file, valid_key)
    people = None
    imports = rt.settings.imports
    keep = parquet.metadata.num_rows >= imports.stage_once_rows
    # Committed, not rolled back: the plan writes nothing but the session's
    # staging tables, which the commit empties (``staging`` empties them when
    # anything fails), and, for a large job, the job's own table: created,
    # filled and analysed in this transaction, so it exists only complete.
    async with rt.pool.acquire() as conn:
        if keep:
            # Before adding one, drop the tables nobody will read any more.
            await journal.sweep_job_tables(conn, imports.staged_rows_kept_hours * 3600)
        async with journal.staging(conn), conn.transaction():
            staged = journal.STAGED
            if keep:
                staged = await journal.create_job_table(conn, job.id)
            rows = await journal.stage_row_groups(
                conn,
                parquet.num_row_groups,
                parquet.read_row_group,
                before=lambda: rt.cancellations.check(job.id),
                job_id=job.id if keep else None,
            )
            # Read-only: the plan is the importer's own classification, nothing is written.
            counts = await journal.classify_staged(
                conn, job.organisation_id, job.unit_id, job.school_year, staged
            )
            archive, held = 0, False
            if job.archive_missing:
                identities = await asyncio.to_thread(
                    _read_identities, rt.store, (valid_key, invalid_key)
                )
                await journal.stage_file_identities(conn, identities)
                archive_set = await journal.archive_plan(
                    conn,
                    job.organisation_id,
                    job.unit_id,
                    imports.default_archive_hold_ratio,
                    before_import=True,
                    staged=staged,
                )
                archive, held = len(archive_set.patient_ids), archive_set.held
                people = await store.archive_people(conn, archive_set.patient_ids)
    key = None
    if people is not None:
        key = archive_key(job.organisation_id, job.id)
        await asyncio.to_thread(rt.store.write_table, key, people)
    plan = events.Plan(
        create=counts.created,
        update=counts.updated,
        unchanged=counts.unchanged,
        reactivate=counts.reactivated,
        archive=archive,
        archive_held=held,
    )
    return PlanResult(plan, key, rows if keep else None)
