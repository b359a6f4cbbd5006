"""The database pool and the numbered migrations in ./migrations."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from rosterflow.settings import DatabaseSettings

# What handlers hold: a connection of their own or one lent by the pool.
Connection = asyncpg.Connection | PoolConnectionProxy

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any constant works; it keeps several services starting at once from
# applying the same migration twice.
_MIGRATION_LOCK = 7_202_611


EVENT_SEEN = "SELECT job_id FROM processed_events WHERE consumer = $1 AND event_id = $2"
# The consumers' records of one event, for a re-drive: by the ledger's key, each
# consumer group named (a look-up by event id alone would read the whole ledger).
FORGET_EVENT = """
DELETE FROM processed_events
 WHERE consumer = ANY($3::text[]) AND event_id = $1 AND job_id = $2
"""
RECORD_EVENT = """
INSERT INTO processed_events (consumer, event_id, job_id) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING
"""

# One more attempt of a consumer at an event of a job, committed on its own;
# nothing (0) for a job that is not registered.
# An event as it arrives: handled before (and for which job), else one more attempt
# at it counted, for a job that exists: one statement, one round trip a delivery.
BEGIN_DELIVERY = """
WITH handled AS (
    SELECT job_id FROM processed_events WHERE consumer = $1 AND event_id = $2),
counted AS (
    INSERT INTO job_attempts (job_id, consumer, event_id, attempts)
    SELECT id, $1, $2, 1 FROM jobs WHERE id = $3 AND NOT EXISTS (SELECT FROM handled)
    ON CONFLICT (job_id, consumer, event_id)
    DO UPDATE SET attempts = job_attempts.attempts + 1, last_at = now()
    RETURNING attempts)
SELECT EXISTS (SELECT FROM handled) AS handled,
       (SELECT job_id FROM handled) AS handled_job,
       (SELECT attempts FROM counted) AS attempts
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", path.name)
        if match is None:
            raise RuntimeError(f"migration file {path.name} is not named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in found]
    # A gap means a migration is missing from this build; a database that ran
    # a later one first would be in a state no build ever had.
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return found


async def migrate(conn: Connection) -> list[int]:
    """Apply the migrations this database lacks; returns the versions applied."""
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in migrations():
            if migration.version in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            applied.append(migration.version)
    return applied


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def connect(dsn: str) -> asyncpg.Connection:
    """One connection with the same codecs the pool's connections have."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool beyond asyncpg's own rollback.

    asyncpg always rolls back a transaction left open and drops listeners; by
    default it then also runs ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL``, a round trip on every release (about 26 per job in a burst).
    The code leaves no other session state behind: advisory locks are
    transaction locks but a stage's hold on its job (``rosterflow.holds``),
    which is let go before its connection goes back (or the connection
    closed); nothing SETs, LISTENs or keeps a cursor outside a transaction.
    The one state kept on purpose is ``journal.staging.staging``'s temporary
    tables, created once per connection and emptied by every commit (``RESET
    ALL`` would keep them too; ``DISCARD ALL`` would not).
    """


async def create_pool(settings: DatabaseSettings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        settings.dsn.get_secret_value(),
        min_size=settings.min_pool_size,
        max_size=settings.max_pool_size,
        init=_init_connection,
        reset=_keep_session,
    )
    assert pool is not None  # asyncpg returns None only when used without awaiting
    return pool
