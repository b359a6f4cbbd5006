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

UNIT_LEVEL = "SELECT school_level FROM units WHERE id = $1"

COLUMN_MAPPINGS = """
SELECT header_key, columns, org_sourced_id FROM column_mappings WHERE unit_id = $1 AND format = $2
"""

ARCHIVE_PEOPLE = """
SELECT identity_number, given_name, family_name FROM patients
 WHERE id = ANY($1::uuid[])
 ORDER BY family_name, given_name, identity_number
"""


async def unit_level(conn: Connection, unit_id: UUID) -> SchoolLevel | None:
    """The unit's school level; None when the unit no longer exists."""
    level = await conn.fetchval(UNIT_LEVEL, unit_id)
    if level is None:
        return None
    if level not in get_args(SchoolLevel):
        raise ValueError(f"unknown school level {level!r}")
    return cast(SchoolLevel, level)


async def column_mappings(conn: Connection, unit_id: UUID, format: str) -> Mappings:
    """The unit's remembered column mappings in this format, by header key."""
    rows = await conn.fetch(COLUMN_MAPPINGS, unit_id, format)
    return {r["header_key"]: Remembered(r["columns"], r["org_sourced_id"]) for r in rows}


async def archive_people(conn: Connection, patient_ids: Sequence[UUID]) -> pa.Table:
    """Who the archive set holds, as the administrator checks it: number and name."""
    rows = await conn.fetch(ARCHIVE_PEOPLE, list(patient_ids))
    return pa.Table.from_pylist([dict(r) for r in rows], schema=ARCHIVE_SCHEMA)
