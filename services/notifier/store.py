"""The notifier's SQL: one row per job outcome in ``notifications``.

A row in 'sending' or 'retrying' is an email still owed. Whoever sends it
first takes it with a lease (state 'sending', next_attempt_at = the lease's
end) in one committed statement; the SMTP conversation runs outside any
transaction, so no lock or connection is held while a relay is slow.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from rosterflow.db import Connection

# The email is recorded and leased in one statement. A second delivery of
# the event, or another instance, finds the row and leaves it alone.
RECORD = """
INSERT INTO notifications (job_id, outcome, recipient, state, attempts, message_id, message,
                           next_attempt_at)
VALUES ($1, $2, $3, 'sending', 1, $4, $5, now() + make_interval(secs => $6))
ON CONFLICT (job_id, outcome) DO NOTHING
RETURNING job_id, outcome, recipient, message, attempts
"""

# A recipient that cannot even be written as an address: refused before SMTP.
RECORD_REFUSED = """
INSERT INTO notifications (job_id, outcome, recipient, state, attempts, last_error)
VALUES ($1, $2, $3, 'refused', 0, $4)
ON CONFLICT (job_id, outcome) DO NOTHING
"""

# SKIP LOCKED: two instances polling at once each take different rows; the
# lease they commit keeps the rows theirs after the statement ends.
TAKE_DUE = """
WITH due AS (
    SELECT job_id, outcome FROM notifications
     WHERE state IN ('sending', 'retrying') AND next_attempt_at <= now()
     ORDER BY next_attempt_at
     LIMIT $1
       FOR UPDATE SKIP LOCKED)
UPDATE notifications n
   SET state = 'sending', attempts = n.attempts + 1,
       next_attempt_at = now() + make_interval(secs => $2), updated_at = now()
  FROM due
 WHERE n.job_id = due.job_id AND n.outcome = due.outcome
RETURNING n.job_id, n.outcome, n.recipient, n.message, n.attempts
"""

MARK_SENT = """
UPDATE notifications
   SET state = 'sent', sent_at = coalesce(sent_at, now()), next_attempt_at = NULL,
       updated_at = now()
 WHERE job_id = $1 AND outcome = $2
RETURNING extract(epoch FROM sent_at - created_at)::float8 AS waited
"""

# The attempt number fences the lease: an instance whose lease ran out (and
# whose email another instance took over) can no longer change the row.
MARK_REFUSED = """
UPDATE notifications
   SET state = 'refused', last_error = $4, next_attempt_at = NULL, updated_at = now()
 WHERE job_id = $1 AND outcome = $2 AND attempts = $3 AND state = 'sending'
"""

MARK_DEFERRED = """
UPDATE notifications
   SET state = CASE WHEN created_at + make_interval(secs => $6) <= now()
                    THEN 'abandoned' ELSE 'retrying' END,
       next_attempt_at = CASE WHEN created_at + make_interval(secs => $6) <= now()
                              THEN NULL ELSE now() + make_interval(secs => $5) END,
       last_error = $4, updated_at = now()
 WHERE job_id = $1 AND outcome = $2 AND attempts = $3 AND state = 'sending'
RETURNING state
"""

# Before composing, in one round trip: whether the outcome's email is recorded
# already, and the unit's name. The name is scoped to the job's organisation: a
# request naming another organisation's unit is rejected, and its email must
# not reveal that unit's name.
TO_COMPOSE = """
SELECT EXISTS (SELECT FROM notifications WHERE job_id = $1 AND outcome = $2) AS recorded,
       (SELECT name FROM units WHERE id = $3 AND organisation_id = $4) AS unit_name
"""


@dataclass(frozen=True)
class Pending:
    """An email this instance holds the lease on; ``attempts`` counts this one."""

    job_id: UUID
    outcome: str
    recipient: str
    message: bytes
    attempts: int


async def to_compose(
    conn: Connection, job_id: UUID, outcome: str, unit_id: UUID, organisation_id: UUID
) -> str | None:
    """The unit's name for a new email (its id when it is not a unit of the
    organisation); None when the outcome's email was recorded before."""
    row = await conn.fetchrow(TO_COMPOSE, job_id, outcome, unit_id, organisation_id)
    assert row is not None
    if row["recorded"]:
        return None
    return str(row["unit_name"]) if row["unit_name"] is not None else str(unit_id)


async def record(
    conn: Connection,
    job_id: UUID,
    outcome: str,
    recipient: str,
    message_id: str,
    message: bytes,
    lease_seconds: float,
) -> Pending | None:
    """The new email, leased to the caller; None when it was recorded before."""
    row = await conn.fetchrow(
        RECORD, job_id, outcome, recipient, message_id, message, lease_seconds
    )
    return None if row is None else Pending(**dict(row))


async def record_refused(
    conn: Connection, job_id: UUID, outcome: str, recipient: str, reason: str
) -> None:
    await conn.execute(RECORD_REFUSED, job_id, outcome, recipient, reason)


async def take_due(conn: Connection, limit: int, lease_seconds: float) -> list[Pending]:
    rows = await conn.fetch(TAKE_DUE, limit, lease_seconds)
    return [Pending(**dict(row)) for row in rows]


async def mark_sent(conn: Connection, pending: Pending) -> float | None:
    """Record the email sent; return the seconds it waited since the outcome was recorded."""
    waited = await conn.fetchval(MARK_SENT, pending.job_id, pending.outcome)
    return float(waited) if waited is not None else None


async def mark_refused(conn: Connection, pending: Pending, reason: str) -> None:
    await conn.execute(MARK_REFUSED, pending.job_id, pending.outcome, pending.attempts, reason)


async def mark_deferred(
    conn: Connection, pending: Pending, reason: str, delay: float, give_up_after: float
) -> str | None:
    """'retrying' (or 'abandoned' once the give-up time has passed); None if fenced off."""
    state = await conn.fetchval(
        MARK_DEFERRED,
        pending.job_id,
        pending.outcome,
        pending.attempts,
        reason,
        delay,
        give_up_after,
    )
    return None if state is None else str(state)
