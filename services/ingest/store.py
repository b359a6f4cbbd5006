"""The ingest service's SQL."""

from __future__ import annotations

from uuid import UUID

from rosterflow.db import Connection
from services.ingest.logic import Unit

GET_UNIT = "SELECT id, organisation_id, name, school_level FROM units WHERE id = $1"


async def get_unit(conn: Connection, unit_id: UUID) -> Unit | None:
    row = await conn.fetchrow(GET_UNIT, unit_id)
    return None if row is None else Unit(**dict(row))
