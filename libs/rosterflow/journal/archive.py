"""Who archiving would take, archiving them, and undoing a job's archiving."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from rosterflow.db import Connection
from rosterflow.journal.arrays import RowArrays, Staged, rows_from_arrays
from rosterflow.journal.staging import STAGED

ARCHIVE_CANDIDATES = """
SELECT e.patient_id FROM enrolments e
  JOIN patients p ON p.id = e.patient_id
 WHERE e.unit_id = $1 AND e.status = 'active'
   AND NOT EXISTS (SELECT 1 FROM file_identities f WHERE f.identity_number = p.identity_number)
   AND NOT EXISTS (SELECT 1 FROM archive_exclusions x
                    WHERE x.unit_id = e.unit_id AND x.patient_id = e.patient_id)
"""

COUNT_ACTIVE = "SELECT count(*) FROM enrolments WHERE unit_id = $1 AND status = 'active'"

# Staged rows whose patient is not active in the unit yet: the import adds them
# to the active patients the archive threshold is measured against.
COUNT_JOINING = """
SELECT count(*) FROM {staged} s
  LEFT JOIN patients p ON p.organisation_id = $1 AND p.identity_number = s.identity_number
  LEFT JOIN enrolments e ON e.unit_id = $2 AND e.patient_id = p.id
 WHERE e.status IS DISTINCT FROM 'active'
"""
# The same, reading a small set's identity numbers from an array.
COUNT_JOINING_ROWS = COUNT_JOINING.format(staged=rows_from_arrays(3, ("identity_number",)))

ARCHIVE = """
UPDATE enrolments e SET status = 'archived', archived_at = now(), archived_by_job = $3
  FROM unnest($2::uuid[]) AS chosen (patient_id)
 WHERE e.unit_id = $1 AND e.patient_id = chosen.patient_id AND e.status = 'active'
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


async def archive_plan(
    conn: Connection,
    organisation_id: UUID,
    unit_id: UUID,
    default_ratio: float,
    *,
    before_import: bool = False,
    staged: Staged = STAGED,
) -> ArchivePlan:
    """Who archiving would take; ``before_import`` when the staged rows are not applied yet.

    The threshold is measured against the unit's active patients after the
    import, as the archiver sees them; before it, the staged rows that would
    join the unit are counted in.
    """
    ids = [r["patient_id"] for r in await conn.fetch(ARCHIVE_CANDIDATES, unit_id)]
    active = await conn.fetchval(COUNT_ACTIVE, unit_id)
    if before_import:
        if isinstance(staged, RowArrays):
            active += await conn.fetchval(
                COUNT_JOINING_ROWS, organisation_id, unit_id, staged.column("identity_number")
            )
        else:
            active += await conn.fetchval(
                COUNT_JOINING.format(staged=staged), organisation_id, unit_id
            )
    ratio = await conn.fetchval(HOLD_RATIO, organisation_id)
    return ArchivePlan(
        ids, int(active), Decimal(ratio) if ratio is not None else Decimal(str(default_ratio))
    )


async def archive(
    conn: Connection, unit_id: UUID, patient_ids: Sequence[UUID], job_id: UUID
) -> int:
    status: str = await conn.execute(ARCHIVE, unit_id, list(patient_ids), job_id)
    return int(status.split()[-1])


UNARCHIVE = """
UPDATE enrolments
   SET status = 'active', archived_at = NULL, archived_by_job = NULL, activated_at = now()
 WHERE archived_by_job = $1 AND status = 'archived'
"""


async def unarchive(conn: Connection, job_id: UUID) -> int:
    """Re-activate what this job archived; someone archived again since is another job's."""
    status: str = await conn.execute(UNARCHIVE, job_id)
    return int(status.split()[-1])
