from __future__ import annotations

from typing import Any
from uuid import uuid4

import pyarrow as pa

from rosterflow import db, report
from rosterflow.journal import arrays, job_tables, merge, staging
from rosterflow.journal.encoding import staged_csv
from rosterflow.testing import School

YEAR = "2026/2027"


def staged_table(count: int, **given: pa.Array) -> pa.Table:
    """``count`` staged rows: the columns ``given``, the others empty (no contact data,
    no guardians, no protected identity)."""
    columns: dict[str, pa.Array] = {
        name: pa.nulls(count, report.VALID_ROWS_SCHEMA.field(name).type)
        for name in report.STAGED_COLUMNS
    }
    columns["protected_identity"] = pa.array([False] * count)
    columns.update(given)
    return pa.table({name: columns[name] for name in report.STAGED_COLUMNS})


def staged_rows(count: int) -> pa.Table:
    """``count`` rows as the staging tables take them (dates that exist in no identity number)."""
    return staged_table(
        count,
        identity_number=pa.array([f"2010010{n:05d}" for n in range(count)]),
        identity_kind=pa.array(["personal"] * count),
        given_name=pa.array(["Alva"] * count),
        family_name=pa.array(["Berg"] * count),
        grade_year=pa.array([3] * count, type=pa.int16()),
    )


# The importer's three ways to apply rows, each with the plan before it: (plan, applied).


async def by_arrays(
    conn: db.Connection, school: School, table: pa.Table, *, guardians_only: bool = False
) -> tuple[Any, Any]:
    """A small set's way: the rows passed as arrays."""
    rows = arrays.RowArrays.of(table)
    args = (conn, school.organisation_id, school.unit_id, YEAR, rows)
    plan = await merge.classify_staged(*args, guardians_only=guardians_only)
    async with conn.transaction():
        applied = await merge.apply_staged(*args, guardians_only=guardians_only)
    return plan, applied


async def by_staging(
    conn: db.Connection, school: School, table: pa.Table, *, guardians_only: bool = False
) -> tuple[Any, Any]:
    """The rows in the session's staging table, for the plan and again for the import."""
    args = (conn, school.organisation_id, school.unit_id, YEAR)
    async with staging.staging(conn), conn.transaction():
        await staging.stage_rows(conn, table)
        plan = await merge.classify_staged(*args, guardians_only=guardians_only)
    async with staging.staging(conn), conn.transaction():
        await staging.stage_rows(conn, table)
        applied = await merge.apply_staged(*args, guardians_only=guardians_only)
    return plan, applied


async def by_job_table(
    conn: db.Connection, school: School, table: pa.Table, *, guardians_only: bool = False
) -> tuple[Any, Any]:
    """A large plan's way: the rows in the job's own table, from the plan to the import."""
    job_id = uuid4()
    args = (conn, school.organisation_id, school.unit_id, YEAR)
    async with staging.staging(conn), conn.transaction():
        name = await job_tables.create_job_table(conn, job_id)
        await job_tables.copy_job_rows(conn, job_id, staged_csv(table))
        plan = await merge.classify_staged(*args, name, guardians_only=guardians_only)
    async with staging.staging(conn), conn.transaction():
        applied = await merge.apply_staged(*args, name, guardians_only=guardians_only)
    await job_tables.drop_job_table(conn, job_id)
    return plan, applied


APPLY_PATHS = {"arrays": by_arrays, "staging": by_staging, "job_table": by_job_table}


async def row_versions(
    conn: db.Connection, school: School
) -> dict[tuple[str, str, int | None], str]:
    """Each journal row of the school's organisation by table, patient and guardian place
    (patients, enrolments, placements, guardians), and its xmin: a row written again gets
    a new one."""
    rows = await conn.fetch(
        """SELECT 'patients' AS kind, p.identity_number AS key, NULL::smallint AS position,
                  p.xmin::text AS v
             FROM patients p WHERE p.organisation_id = $1
           UNION ALL
           SELECT 'enrolments', p.identity_number, NULL, e.xmin::text
             FROM enrolments e JOIN patients p ON p.id = e.patient_id
            WHERE p.organisation_id = $1
           UNION ALL
           SELECT 'placements', p.identity_number, NULL, pl.xmin::text
             FROM placements pl JOIN patients p ON p.id = pl.patient_id
            WHERE p.organisation_id = $1
           UNION ALL
           SELECT 'guardians', p.identity_number, g.position, g.xmin::text
             FROM guardians g JOIN patients p ON p.id = g.patient_id
            WHERE p.organisation_id = $1""",
        school.organisation_id,
    )
    return {(r["kind"], r["key"], r["position"]): r["v"] for r in rows}
