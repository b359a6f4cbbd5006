"""The sweep that re-drives stuck jobs: a running job nobody works on past its deadline.

A job in received, validating, importing or archiving (not a held archive,
which waits for a person) that no stage holds (``rosterflow.holds``), longer
than its state's deadline (``HealingSettings``) since it entered the state
and since its stage last took its event, is re-driven (``rosterflow.redrive``):
its stage's event is sent again (through the outbox) and the stage finds where the job
really is. Such a job lost its event, or the commit its event announced, or
the delivery that should have moved it did nothing.

It runs in the ingest service, the owner of a job's life from the outside:
no deployable more to run and watch, and a stage that is down (whose jobs
are the stuck ones) is not the one that must notice. Every ingest instance
runs the loop; a session-level advisory lock lets one sweep at a time.

Bounded twice: each re-drive is one more delivery of the stage's event, and
the consume contract ends the job failed (``stage_attempts_exhausted``) after
``ROSTERFLOW_KAFKA_MAX_ATTEMPTS`` deliveries that did not finish it; a stage
that takes no event at all (down, halted) gets one re-drive per deadline,
which its first delivery after it is back handles once and the ledger skips
after that, while the RosterflowJobStuckInStage alert calls an operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from uuid import UUID

import asyncpg

from rosterflow import holds, jobs
from rosterflow.db import Connection
from rosterflow.jobs import JobState
from rosterflow.kafka.retry import TRANSIENT
from rosterflow.ops import metrics
from rosterflow.redrive import Redriven, consumer_of, next_event, redrive
from rosterflow.runtime import Runtime

log = logging.getLogger(__name__)

RUNNING = (JobState.RECEIVED, JobState.VALIDATING, JobState.IMPORTING, JobState.ARCHIVING)
# One sweeping instance at a time (an advisory lock's key, as db._MIGRATION_LOCK's).
_SWEEP_LOCK = 7_202_613
# Jobs looked at per sweep; more wait for the next one.
_BATCH = 100

STUCK = """
SELECT j.id, d.seconds
  FROM jobs j
  JOIN unnest($1::text[], $2::float8[]) AS d(state, seconds) ON d.state = j.state
 WHERE j.updated_at < now() - make_interval(secs => d.seconds)
   AND NOT (j.archive_held_at IS NOT NULL AND j.archive_decision IS NULL)
 ORDER BY j.updated_at
 LIMIT $3
"""
# The stage took the job's event this recently: it is at work or failing on its
# own (its attempts bound it), not forgotten.
TAKEN_SINCE = """
SELECT EXISTS (SELECT 1 FROM job_attempts WHERE job_id = $1 AND consumer = $2 AND event_id = $3
                 AND last_at > now() - make_interval(secs => $4))
"""

for _state in RUNNING:
    metrics.JOBS_REDRIVEN.labels(_state.value)


async def sweep(rt: Runtime) -> list[Redriven]:
    """Re-drive every stuck job (none when another instance sweeps now)."""
    healing = rt.settings.healing
    states = [s.value for s in RUNNING]
    deadlines = [healing.deadline(s) for s in states]
    async with rt.pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _SWEEP_LOCK):
            return []
        try:
            stuck = await conn.fetch(STUCK, states, deadlines, _BATCH)
            done = [await _heal(rt, conn, r["id"], r["seconds"]) for r in stuck]
        finally:
            await _let_go(conn)
    return [d for d in done if d is not None]


async def _heal(rt: Runtime, conn: Connection, job_id: UUID, deadline: float) -> Redriven | None:
    async with holds.if_unheld(conn, job_id) as free:
        if not free:
            return None  # a stage works on it, however long that takes
        # Read under the hold: no stage moves it meanwhile.
        job = await jobs.get(conn, job_id)
        event = None if job is None or job.state not in RUNNING else next_event(job)
        if job is None or event is None:
            return None
        _, group = consumer_of(rt.settings.kafka, event)
        if await conn.fetchval(TAKEN_SINCE, job_id, group, event.event_id, deadline):
            return None
        done = await redrive(conn, rt.publisher.publish, rt.settings.kafka, job)
    if done is not None:
        metrics.JOBS_REDRIVEN.labels(job.state.value).inc()
        log.warning(
            "stuck job re-driven",
            extra={
                "job_id": str(job_id),
                "state": job.state.value,
                "event": type(done.event).__name__,
                "cleared": done.cleared,
            },
        )
    return done


async def _let_go(conn: Connection) -> None:
    try:
        await conn.execute("SELECT pg_advisory_unlock($1)", _SWEEP_LOCK)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        conn.terminate()  # a live connection must not go back to the pool holding it


class Healer:
    """The sweep every ``sweep_seconds``, beside a service's handlers."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="healing")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        every = self._rt.settings.healing.sweep_seconds
        while True:
            await asyncio.sleep(every)
            try:
                await sweep(self._rt)
            except TRANSIENT as exc:
                log.warning("sweep for stuck jobs failed", extra={"error": type(exc).__name__})
            except Exception:  # a bug must not end healing for the process's life
                log.exception("sweep for stuck jobs failed")
