"""A job's own staging table (``job_staging."<job id>"``), from the plan to the
import, and the sweep of the tables nothing will read."""

from __future__ import annotations

import io
from collections.abc import Sequence
from uuid import UUID

from rosterflow.db import Connection
from rosterflow.report import STAGED_COLUMNS

JOB_SCHEMA = "job_staging"

LOCK_JOB_TABLE = "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7202612))"
# Tables of jobs that have ended, and of plans not confirmed in time.
STALE_JOB_TABLES = """
SELECT c.relname FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN jobs j ON j.id::text = c.relname
 WHERE n.nspname = 'job_staging' AND c.relkind = 'r'
   AND (j.id IS NULL OR j.state IN ('completed', 'cancelled', 'failed', 'rejected')
        OR (j.state = 'awaiting_confirmation'
            AND j.validation_finished_at < now() - make_interval(secs => $1)))
"""
# Re-checked under the job row's lock, so a confirmation (which moves the job
# to importing under that lock) and the sweep resolve one way.
STILL_STALE = """
SELECT state IN ('completed', 'cancelled', 'failed', 'rejected')
       OR (state = 'awaiting_confirmation'
           AND validation_finished_at < now() - make_interval(secs => $2)) AS stale
  FROM jobs WHERE id = $1 FOR UPDATE
"""


def job_table(job_id: UUID) -> str:
    """A job's own staging table, as SQL names it (built from the id alone)."""
    return f'{JOB_SCHEMA}."{job_id}"'


async def create_job_table(conn: Connection, job_id: UUID) -> str:
    """Inside the plan's transaction: an empty table for the job's rows, replacing
    one a repeated plan left. UNLOGGED: no WAL for rows the report holds anyway,
    which is also why a crash of PostgreSQL may empty it (``job_table_rows``)."""
    name = job_table(job_id)
    # Two plans of one job at once (a partition handed over mid-check): the
    # second waits for the first's commit and replaces its table, instead of
    # failing on a name the first has not committed yet.
    await conn.execute(LOCK_JOB_TABLE, str(job_id))
    # No autovacuum: the table is read once, by the importer, and dropped.
    # Left on, it VACUUM ANALYZEd a million staged rows during the import
    # (~5 s of a worker reading and writing 150 MB beside the inserts).
    await conn.execute(
        f"DROP TABLE IF EXISTS {name}; CREATE UNLOGGED TABLE {name} (LIKE staged)"
        " WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)"
    )
    return name


async def job_table_rows(conn: Connection, job_id: UUID) -> int | None:
    """The rows in the job's table, None when there is none.

    The table is filled in the transaction that creates it, so it holds all of
    the plan's rows or, after PostgreSQL restarted from a crash, none."""
    name = job_table(job_id)
    if await conn.fetchval("SELECT to_regclass($1)", name) is None:
        return None
    return int(await conn.fetchval(f"SELECT count(*) FROM {name}"))


async def copy_job_rows(conn: Connection, job_id: UUID, rows: io.BytesIO) -> int:
    """COPY rows ``staged_csv`` encoded into the job's table; returns how many.

    Only in the transaction that created or emptied the table: the rows are
    written frozen (``FREEZE``), so its first reader, the importer, does not
    set a hint bit on every row and write every page of it out again."""
    status: str = await conn.copy_to_table(
        str(job_id),
        schema_name=JOB_SCHEMA,
        source=rows,
        columns=list(STAGED_COLUMNS),
        format="csv",
        freeze=True,
    )
    return int(status.split()[-1])


async def empty_job_table(conn: Connection, job_id: UUID) -> None:
    """Inside the transaction that created it: start the job's rows over."""
    await conn.execute(f"TRUNCATE {job_table(job_id)}")


async def drop_job_duplicates(
    conn: Connection, job_id: UUID, conflicting: Sequence[str], copied: Sequence[str]
) -> int:
    """Remove what the duplicate check took out of the valid rows; returns the rows removed.

    Every row of a ``conflicting`` identity number goes; of a ``copied`` one
    (exact copies) all but the first in file order stays, which in a table
    only ever appended to since it was emptied is the one with the lowest ctid.
    """
    table = job_table(job_id)
    removed = 0
    if conflicting:
        status: str = await conn.execute(
            f"DELETE FROM {table} WHERE identity_number = ANY($1::text[])", list(conflicting)
        )
        removed += int(status.split()[-1])
    if copied:
        status = await conn.execute(
            f"""DELETE FROM {table} t
                 USING (SELECT identity_number, min(ctid) AS first FROM {table}
                         WHERE identity_number = ANY($1::text[]) GROUP BY identity_number) f
                 WHERE t.identity_number = f.identity_number AND t.ctid <> f.first""",
            list(copied),
        )
        removed += int(status.split()[-1])
    return removed


async def drop_job_table(conn: Connection, job_id: UUID) -> None:
    await conn.execute(f"DROP TABLE IF EXISTS {job_table(job_id)}")


async def sweep_job_tables(conn: Connection, kept_seconds: float) -> int:
    """Drop the tables of jobs that ended, and of plans awaiting confirmation for
    longer than ``kept_seconds`` (their import stages from the report). Outside a
    transaction; returns how many were dropped."""
    dropped = 0
    for row in await conn.fetch(STALE_JOB_TABLES, kept_seconds):
        try:
            job_id = UUID(row["relname"])
        except ValueError:
            continue  # not a job's table: not this code's to drop
        async with conn.transaction():
            stale = await conn.fetchval(STILL_STALE, job_id, kept_seconds)
            if stale is not False:  # None: no such job
                await drop_job_table(conn, job_id)
                dropped += 1
    return dropped
