"""The plan: what confirming would do, computed against the journal's current state.

The valid rows are staged and classified with the importer's own join
(nothing is written), so the plan is exactly what the importer will do
against the same journal state. With
*archive missing* the list of who would be archived is written next to the
report, for the administrator to see before anything happens.
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
    # Committed, not rolled back: the plan writes nothing but the session's
    # staging tables, which the commit empties; ``staging`` empties them when
    # anything fails.
    async with rt.pool.acquire() as conn, journal.staging(conn), conn.transaction():
        await journal.stage_row_groups(
            conn,
            parquet.num_row_groups,
            parquet.read_row_group,
            before=lambda: rt.cancellations.check(job.id),
        )
        # Read-only: the plan is the importer's own classification, nothing is written.
        counts = await journal.classify_staged(
            conn, job.organisation_id, job.unit_id, job.school_year
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
                rt.settings.imports.default_archive_hold_ratio,
                before_import=True,
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
    return PlanResult(plan, key)
