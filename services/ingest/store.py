"""The ingest service's SQL."""

from __future__ import annotations

from uuid import UUID

from rosterflow.db import Connection
from services.ingest.logic import Unit

GET_UNIT = "SELECT id, organisation_id, name, school_level FROM units WHERE id = $1"


async def get_unit(conn: Connection, unit_id: UUID) -> Unit | None:
    row = await conn.fetchrow(GET_UNIT, unit_id)
    return None if row is None else Unit(**dict(row))


# --- the front door's reads ---------------------------------------

# The overview: filters are optional (NULL means any); newest first.
_OVERVIEW_FILTER = """
 WHERE j.organisation_id = $1
   AND ($2::uuid IS NULL OR j.unit_id = $2)
   AND ($3::text[] IS NULL OR j.state = ANY($3))
   AND ($4::timestamptz IS NULL OR j.received_at >= $4)
   AND ($5::timestamptz IS NULL OR j.received_at < $5)
"""
OVERVIEW = f"""
SELECT j.*, u.name AS unit_name
  FROM jobs j LEFT JOIN units u ON u.id = j.unit_id
{_OVERVIEW_FILTER}
 ORDER BY j.received_at DESC, j.id
 OFFSET $6 LIMIT $7
"""
OVERVIEW_COUNT = f"SELECT count(*) FROM jobs j {_OVERVIEW_FILTER}"

EXCLUSIONS = """
SELECT x.patient_id, p.identity_number, p.given_name, p.family_name, x.created_at, x.created_by,
       count(*) OVER () AS total
  FROM archive_exclusions x JOIN patients p ON p.id = x.patient_id
 WHERE x.unit_id = $1
 ORDER BY p.family_name, p.given_name, p.identity_number
 OFFSET $2 LIMIT $3
"""

# Only a patient of the unit's organisation can be excluded in the unit.
ADD_EXCLUSION = """
WITH patient AS (
    SELECT id FROM patients WHERE organisation_id = $2 AND identity_number = $3
), added AS (
    INSERT INTO archive_exclusions (unit_id, patient_id, created_by)
    SELECT $1, id, $4 FROM patient
    ON CONFLICT (unit_id, patient_id) DO NOTHING
)
SELECT id FROM patient
"""

EXCLUSION = """
SELECT x.patient_id, p.identity_number, p.given_name, p.family_name, x.created_at, x.created_by
  FROM archive_exclusions x JOIN patients p ON p.id = x.patient_id
 WHERE x.unit_id = $1 AND x.patient_id = $2
"""

REMOVE_EXCLUSION = """
DELETE FROM archive_exclusions WHERE unit_id = $1 AND patient_id = $2 RETURNING patient_id
"""
