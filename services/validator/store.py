"""The validator's SQL: what the rules need to know about the unit, and who would be archived."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast, get_args
from uuid import UUID

import pyarrow as pa

from rosterflow.db import Connection
from services.validator.grades import SchoolLevel
from services.validator.mapping import Mappings, Remembered
from services.validator.report import ARCHIVE_SCHEMA

# The unit's level and its remembered column mappings in the job's format, in one round
# trip (every job, however small, asks).
UNIT = """
SELECT u.school_level,
       (SELECT coalesce(jsonb_agg(jsonb_build_array(m.header_key, m.columns, m.org_sourced_id)),
                        '[]'::jsonb)
          FROM column_mappings m WHERE m.unit_id = u.id AND m.format = $2) AS mappings
  FROM units u WHERE u.id = $1
"""

# A guardian file's students: who the unit has, by identity number (the journal's own form).
ACTIVE_STUDENTS = """
SELECT coalesce(array_agg(p.identity_number), '{}') AS students,
       coalesce(array_agg(p.identity_number) FILTER (WHERE p.protected_identity), '{}')
         AS protected
  FROM enrolments e
  JOIN patients p ON p.id = e.patient_id
 WHERE e.unit_id = $1 AND e.status = 'active'
"""

ARCHIVE_PEOPLE = """
SELECT identity_number, given_name, family_name FROM patients
 WHERE id = ANY($1::uuid[])
 ORDER BY family_name, given_name, identity_number
"""


async def unit_of(
    conn: Connection, unit_id: UUID, format: str
) -> tuple[SchoolLevel, Mappings] | None:
    """The unit's school level and remembered column mappings in this format (by header
    key); None when the unit no longer exists."""
    row = await conn.fetchrow(UNIT, unit_id, format)
    if row is None:
        return None
    level = row["school_level"]
    if level not in get_args(SchoolLevel):
        raise ValueError(f"unknown school level {level!r}")
    mappings = {key: Remembered(columns, org) for key, columns, org in row["mappings"]}
    return cast(SchoolLevel, level), mappings


async def active_students(conn: Connection, unit_id: UUID) -> tuple[pa.Array, pa.Array]:
    """The identity numbers of the unit's active students, and of those of them protected."""
    row = await conn.fetchrow(ACTIVE_STUDENTS, unit_id)
    assert row is not None
    return pa.array(row["students"], pa.string()), pa.array(row["protected"], pa.string())


async def archive_people(conn: Connection, patient_ids: Sequence[UUID]) -> pa.Table:
    """Who the archive set holds, as the administrator checks it: number and name."""
    rows = await conn.fetch(ARCHIVE_PEOPLE, list(patient_ids))
    return pa.Table.from_pylist([dict(r) for r in rows], schema=ARCHIVE_SCHEMA)
