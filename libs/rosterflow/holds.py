"""Which jobs a stage is working on: a PostgreSQL session-level advisory lock per job.

A stage (validator, importer, archiver) holds its job's lock while its
handler runs. Whoever else would act on a job that nobody works on (the
ingest's cancel, the sweep that re-drives stuck jobs) takes it with
``pg_try_advisory_lock``: granted means no stage holds the job, and none can
start on it until it is let go. The lock lives as long as the holder's
connection, so a stage that crashed, or lost its connection when PostgreSQL
restarted, holds nothing: exactly the jobs that need someone else.

The lock is on a connection of the pool, which does not unlock on release
(``db._keep_session``): each hold is let go before its connection goes back,
and a connection that could not let go is closed instead.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg

from rosterflow.db import Connection

log = logging.getLogger(__name__)

# The advisory locks' first key: this space is the jobs' (the second key is the job's).
_JOBS = 7_202_612

HOLD = "SELECT pg_advisory_lock($1, $2)"
TRY_HOLD = "SELECT pg_try_advisory_lock($1, $2)"
LET_GO = "SELECT pg_advisory_unlock($1, $2)"


def _key(job_id: UUID) -> int:
    # Two jobs sharing a key (1 in 2^32) only make one look held while the
    # other is: the cancel then broadcasts and the sweep waits, as for a held job.
    return int.from_bytes(job_id.bytes[:4], "big", signed=True)


async def _let_go(conn: Connection, job_id: UUID) -> None:
    try:
        await conn.execute(LET_GO, _JOBS, _key(job_id))
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        # Gone with a dead connection already; a live one must not go back
        # to the pool still holding it.
        log.warning(
            "job hold not let go; closing its connection",
            extra={"job_id": str(job_id), "error": type(exc).__name__},
        )
        conn.terminate()


@asynccontextmanager
async def holding(pool: asyncpg.Pool, job_id: UUID) -> AsyncIterator[None]:
    """Hold the job while a stage works on it (waits for another holder to let go)."""
    async with pool.acquire() as conn:
        await conn.execute(HOLD, _JOBS, _key(job_id))
        try:
            yield
        finally:
            await _let_go(conn, job_id)


@asynccontextmanager
async def if_unheld(conn: Connection, job_id: UUID) -> AsyncIterator[bool]:
    """Hold the job on ``conn`` for the block if no stage holds it: whether it does."""
    free = bool(await conn.fetchval(TRY_HOLD, _JOBS, _key(job_id)))
    try:
        yield free
    finally:
        if free:
            await _let_go(conn, job_id)
