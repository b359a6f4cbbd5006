"""Import a file through the real services into the journal and read back what it placed."""

from __future__ import annotations

from typing import Any

from rosterflow import events
from rosterflow.db import Connection
from rosterflow.testing import School
from tests.support.pipeline import Pipeline, new_admin


async def import_file(
    p: Pipeline, school: School, content: bytes, fmt: events.FileFormat
) -> tuple[events.JobValidated, events.JobFinished]:
    """Upload, wait for the check, confirm, wait for the outcome."""
    sent = await p.upload(school, content, fmt=fmt)
    validated = await p.tap.next(events.JobValidated, sent.job_id)
    await p.any.publisher.publish(
        events.ConfirmationRequested(job_id=sent.job_id, requested_by=new_admin())
    )
    return validated, await p.tap.next(events.JobFinished, sent.job_id)


async def placed(conn: Connection, school: School) -> list[dict[str, Any]]:
    """The unit's students as the journal holds them, by identity number."""
    rows = await conn.fetch(
        """SELECT p.identity_number, p.given_name, p.family_name, pl.grade_year, pl.class_name
             FROM placements pl JOIN patients p ON p.id = pl.patient_id
            WHERE pl.unit_id = $1 ORDER BY p.identity_number""",
        school.unit_id,
    )
    return [dict(r) for r in rows]
