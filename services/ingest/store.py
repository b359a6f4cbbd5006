"""The ingest service's SQL."""

from __future__ import annotations

from uuid import UUID

from rosterflow.db import Connection
from services.ingest.logic import Unit

GET_UNIT = "SELECT id, organisation_id, name, school_level FROM units WHERE id = $1"


async def get_unit(conn: Connection, unit_id: UUID) -> Unit | None:
    row = await conn.fetchrow(GET_UNIT, unit_id)
    return None if row is None else Unit(**dict(row))


# A decision is taken once, on a held job nobody has cancelled.
DECIDE_ARCHIVE = """
UPDATE jobs SET archive_decision = $2, archive_decided_by = $3, archive_decided_at = now(),
                updated_at = now()
 WHERE id = $1 AND state = 'archiving' AND archive_held_at IS NOT NULL
   AND archive_decision IS NULL AND cancel_requested_at IS NULL
RETURNING true
"""

# Undo is for a completed job that archived someone, once; the row lock makes
# two undo requests at once resolve to one.
CLAIM_UNDO = """
SELECT true FROM jobs
 WHERE id = $1 AND state = 'completed' AND archived_count > 0 AND archive_undone_at IS NULL
 FOR UPDATE
"""

RECORD_UNDO = """
UPDATE jobs SET archive_undone_at = now(), archive_undone_count = $2, updated_at = now()
 WHERE id = $1
"""
