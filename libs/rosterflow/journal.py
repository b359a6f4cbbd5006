"""The journal registry's SQL: stage a file's rows, apply them, find the archive set.

Applying is set-based: the valid rows are COPYed into a temporary staging
table and merged with INSERT … ON CONFLICT … WHERE … IS DISTINCT FROM, so a
row that changes nothing writes nothing. Every patient a statement touches is
noted in a second temporary table, from which the counts are read.

The validator computes the plan by running the same apply in a transaction
it rolls back, so the plan the administrator confirms is exactly what the
importer will do against the same journal state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import pyarrow as pa

from rosterflow.db import Connection
from rosterflow.events import ImportCounts

# The check report's valid rows: what the importer stages, column for column.
VALID_ROWS_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("identity_number", pa.string()),
        ("identity_kind", pa.string()),
        ("given_name", pa.string()),
        ("family_name", pa.string()),
        ("school_form", pa.string()),
        ("grade_year", pa.int16()),
        ("class_name", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
    ]
)
STAGED_COLUMNS = VALID_ROWS_SCHEMA.names[1:]

CREATE_STAGING = """
CREATE TEMPORARY TABLE staged (
    identity_number text PRIMARY KEY,
    identity_kind text NOT NULL,
    given_name text NOT NULL,
    family_name text NOT NULL,
    school_form text,
    grade_year smallint,
    class_name text,
    email text,
    phone text
) ON COMMIT DROP;
CREATE TEMPORARY TABLE touched (patient_id uuid NOT NULL, change text NOT NULL) ON COMMIT DROP;
CREATE TEMPORARY TABLE file_identities (identity_number text PRIMARY KEY) ON COMMIT DROP;
"""

UPSERT_PATIENTS = """
WITH up AS (
    INSERT INTO patients AS p (organisation_id, identity_number, identity_kind,
                               given_name, family_name, email, phone)
    SELECT $1, identity_number, identity_kind, given_name, family_name, email, phone FROM staged
    ON CONFLICT (organisation_id, identity_number) DO UPDATE
       SET given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name,
           identity_kind = EXCLUDED.identity_kind,
           email = EXCLUDED.email, phone = EXCLUDED.phone, updated_at = now()
     WHERE (p.given_name, p.family_name, p.identity_kind, p.email, p.phone)
           IS DISTINCT FROM
           (EXCLUDED.given_name, EXCLUDED.family_name, EXCLUDED.identity_kind,
            EXCLUDED.email, EXCLUDED.phone)
    RETURNING p.id, (xmax = 0) AS created
)
INSERT INTO touched SELECT id, CASE WHEN created THEN 'created' ELSE 'updated' END FROM up
"""

UPSERT_ENROLMENTS = """
WITH up AS (
    INSERT INTO enrolments AS e (patient_id, unit_id)
    SELECT p.id, $2 FROM staged s
      JOIN patients p ON p.organisation_id = $1 AND p.identity_number = s.identity_number
    ON CONFLICT (unit_id, patient_id) DO UPDATE
       SET status = 'active', archived_at = NULL, archived_by_job = NULL, activated_at = now()
     WHERE e.status = 'archived'
    RETURNING e.patient_id, (xmax = 0) AS created
)
INSERT INTO touched SELECT patient_id, CASE WHEN created THEN 'enrolled' ELSE 'reactivated' END
FROM up
"""

UPSERT_PLACEMENTS = """
WITH up AS (
    INSERT INTO placements AS pl (patient_id, unit_id, school_year, school_form, grade_year,
                                  class_name)
    SELECT p.id, $2, $3, s.school_form, s.grade_year, s.class_name FROM staged s
      JOIN patients p ON p.organisation_id = $1 AND p.identity_number = s.identity_number
    ON CONFLICT (unit_id, school_year, patient_id) DO UPDATE
       SET school_form = EXCLUDED.school_form, grade_year = EXCLUDED.grade_year,
           class_name = EXCLUDED.class_name, updated_at = now()
     WHERE (pl.school_form, pl.grade_year, pl.class_name)
           IS DISTINCT FROM (EXCLUDED.school_form, EXCLUDED.grade_year, EXCLUDED.class_name)
    RETURNING pl.patient_id
)
INSERT INTO touched SELECT patient_id, 'placed' FROM up
"""

COUNT_CHANGES = """
WITH per_patient AS (SELECT patient_id, array_agg(change) AS changes FROM touched GROUP BY 1)
SELECT (SELECT count(*) FROM staged) AS staged,
       count(*) FILTER (WHERE 'created' = ANY(changes)) AS created,
       count(*) FILTER (WHERE NOT 'created' = ANY(changes)
                          AND 'reactivated' = ANY(changes)) AS reactivated,
       count(*) FILTER (WHERE NOT 'created' = ANY(changes)
                          AND NOT 'reactivated' = ANY(changes)) AS updated
FROM per_patient
"""

ARCHIVE_CANDIDATES = """
SELECT e.patient_id FROM enrolments e
  JOIN patients p ON p.id = e.patient_id
 WHERE e.unit_id = $1 AND e.status = 'active'
   AND NOT EXISTS (SELECT 1 FROM file_identities f WHERE f.identity_number = p.identity_number)
   AND NOT EXISTS (SELECT 1 FROM archive_exclusions x
                    WHERE x.unit_id = e.unit_id AND x.patient_id = e.patient_id)
"""

COUNT_ACTIVE = "SELECT count(*) FROM enrolments WHERE unit_id = $1 AND status = 'active'"

ARCHIVE = """
UPDATE enrolments SET status = 'archived', archived_at = now(), archived_by_job = $3
 WHERE unit_id = $1 AND patient_id = ANY($2::uuid[]) AND status = 'active'
"""

HOLD_RATIO = "SELECT archive_hold_ratio FROM organisations WHERE id = $1"


@dataclass(frozen=True)
class ArchivePlan:
    patient_ids: list[UUID]
    active: int
    hold_ratio: Decimal

    @property
    def held(self) -> bool:
        """Archiving more than the organisation's share of active patients waits."""
        return len(self.patient_ids) > self.hold_ratio * self.active


async def create_staging(conn: Connection) -> None:
    """Temporary tables for one transaction; call inside it."""
    await conn.execute(CREATE_STAGING)


async def stage_rows(conn: Connection, batch: pa.RecordBatch | pa.Table) -> None:
    columns = [batch.column(name).to_pylist() for name in STAGED_COLUMNS]
    await conn.copy_records_to_table(
        "staged", records=zip(*columns, strict=True), columns=list(STAGED_COLUMNS)
    )


async def stage_file_identities(conn: Connection, identities: Iterable[str]) -> None:
    """Every identity number that appears in the file, valid row or not."""
    await conn.execute("CREATE TEMPORARY TABLE IF NOT EXISTS fi_load (n text) ON COMMIT DROP")
    await conn.copy_records_to_table("fi_load", records=((i,) for i in identities))
    await conn.execute(
        "INSERT INTO file_identities SELECT DISTINCT n FROM fi_load ON CONFLICT DO NOTHING"
    )


async def apply_staged(
    conn: Connection, organisation_id: UUID, unit_id: UUID, school_year: str
) -> ImportCounts:
    await conn.execute(UPSERT_PATIENTS, organisation_id)
    await conn.execute(UPSERT_ENROLMENTS, organisation_id, unit_id)
    await conn.execute(UPSERT_PLACEMENTS, organisation_id, unit_id, school_year)
    row = await conn.fetchrow(COUNT_CHANGES)
    assert row is not None
    created, updated, reactivated = row["created"], row["updated"], row["reactivated"]
    return ImportCounts(
        created=created,
        updated=updated,
        reactivated=reactivated,
        unchanged=row["staged"] - created - updated - reactivated,
    )


async def archive_plan(
    conn: Connection, organisation_id: UUID, unit_id: UUID, default_ratio: float
) -> ArchivePlan:
    ids = [r["patient_id"] for r in await conn.fetch(ARCHIVE_CANDIDATES, unit_id)]
    active = await conn.fetchval(COUNT_ACTIVE, unit_id)
    ratio = await conn.fetchval(HOLD_RATIO, organisation_id)
    return ArchivePlan(
        ids, int(active), Decimal(ratio) if ratio is not None else Decimal(str(default_ratio))
    )


async def archive(
    conn: Connection, unit_id: UUID, patient_ids: Sequence[UUID], job_id: UUID
) -> int:
    status: str = await conn.execute(ARCHIVE, unit_id, list(patient_ids), job_id)
    return int(status.split()[-1])


def rows_of(record: asyncpg.Record) -> dict[str, Any]:
    return dict(record)
