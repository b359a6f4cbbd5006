"""The notifier's SQL: one email per job outcome."""

from __future__ import annotations

from uuid import UUID

from rosterflow.db import Connection

CLAIM = """
INSERT INTO notifications (job_id, outcome, recipient, state, attempts)
VALUES ($1, $2, $3, 'sending', 1)
ON CONFLICT (job_id, outcome) DO UPDATE SET attempts = notifications.attempts + 1,
                                            updated_at = now()
  WHERE notifications.state = 'sending'
RETURNING state
"""

MARK_SENT = """
UPDATE notifications SET state = 'sent', message_id = $3, updated_at = now()
 WHERE job_id = $1 AND outcome = $2
"""

MARK_REFUSED = """
UPDATE notifications SET state = 'refused', last_error = $3, updated_at = now()
 WHERE job_id = $1 AND outcome = $2
"""

UNIT_NAME = "SELECT name FROM units WHERE id = $1"


async def claim(conn: Connection, job_id: UUID, outcome: str, recipient: str) -> bool:
    """True when this email still has to be sent (never sent, or a send was interrupted)."""
    return await conn.fetchval(CLAIM, job_id, outcome, recipient) is not None


async def mark_sent(conn: Connection, job_id: UUID, outcome: str, message_id: str) -> None:
    await conn.execute(MARK_SENT, job_id, outcome, message_id)


async def mark_refused(conn: Connection, job_id: UUID, outcome: str, reason: str) -> None:
    await conn.execute(MARK_REFUSED, job_id, outcome, reason)


async def unit_name(conn: Connection, unit_id: UUID) -> str:
    name = await conn.fetchval(UNIT_NAME, unit_id)
    return str(name) if name is not None else str(unit_id)
