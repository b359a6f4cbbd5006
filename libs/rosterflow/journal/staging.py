"""The session's temporary staging tables, and COPY of a file's rows into them."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import pyarrow as pa
from asyncpg.pool import PoolConnectionProxy

from rosterflow.db import Connection
from rosterflow.journal import job_tables
from rosterflow.journal.encoding import identities_csv, staged_csv
from rosterflow.report import GUARDIAN_COLUMNS, STAGED_COLUMNS

log = logging.getLogger(__name__)

# From this many staged rows on, the staging tables are analysed before they are
# joined. Below it the planner's estimates from the tables' size alone give the
# same plans (index look-ups per row; EXPLAIN, 200 to 5,000 rows against 50,000
# patients), and three ANALYZEs were ~5 ms of backend CPU in a 200-row job.
ANALYZE_FROM_ROWS = 5_000

# The session's staging tables: created once per connection, outside any
# transaction (``staging``), and emptied by every commit. Creating and dropping
# them per transaction cost ~5 ms of backend CPU each time (catalog rows for
# every column, invalidations), more than staging and planning 200 rows.
CREATE_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS staged (
    identity_number text NOT NULL,
    identity_kind text NOT NULL,
    -- A guardian file's rows name no student (patients' own columns refuse a null).
    given_name text,
    family_name text,
    school_form text,
    grade_year smallint,
    class_name text,
    email text,
    phone text,
    phone_2 text,
    phone_3 text,
    street text,
    postcode text,
    city text,
    protected_identity boolean NOT NULL,
    {guardians}
) ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS file_identities (identity_number text NOT NULL)
    ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS resolved (
    LIKE staged,
    patient_id uuid NOT NULL,
    new_patient boolean NOT NULL,
    patient_changed boolean NOT NULL,
    enrolment_status text,
    new_placement boolean NOT NULL,
    placement_changed boolean NOT NULL,
    guardian1_state text,
    guardian2_state text
) ON COMMIT DELETE ROWS;
""".replace("{guardians}", ",\n    ".join(f"{name} text" for name in GUARDIAN_COLUMNS))


@dataclass
class _Staged:
    # Rows COPYed into ``staged`` inside the current ``staging`` block, None
    # outside one. A commit or rollback empties the table, so this never
    # counts fewer rows than it holds (a savepoint rolled back: more, which
    # only means an ANALYZE that was not needed).
    rows: int | None = None


# The connections whose session holds the staging tables. Created outside a
# transaction, they last as long as the session, so ``staging`` creates them
# once per connection instead of on every use: ``CREATE … IF NOT EXISTS`` of
# tables that exist still cost ~1.2 ms of backend CPU and a round trip each
# time (two per job). A connection not in here (a new one, one the pool opened
# to replace a broken one) creates them; nothing in the code discards a
# session's temporary tables (no DISCARD; the pool's reset keeps the session).
_SESSIONS_WITH_STAGING: weakref.WeakKeyDictionary[asyncpg.Connection, _Staged] = (
    weakref.WeakKeyDictionary()
)
# A rolled-back transaction can leave its staged rows' pages behind (no
# autovacuum visits a temporary table): after a failure the tables are emptied.
EMPTY_STAGING = "TRUNCATE staged, file_identities, resolved"
# The statements that read staged rows (merge, archive) name their relation {staged}:
# the session's temporary table, or a job's own (job_table).
STAGED = "staged"


async def create_staging(conn: Connection) -> None:
    """The staging tables, if this connection lacks them (inside a transaction, they
    last only if it commits: prefer ``staging`` around the transaction)."""
    await conn.execute(CREATE_STAGING)


def _session(conn: Connection) -> asyncpg.Connection:
    """The connection itself: the pool lends it through a new proxy on every acquire.

    asyncpg (0.32) offers no public way from the proxy to its connection, and no
    public per-connection object to key on instead: ``get_settings()`` returns
    one per connection but it cannot be weakly referenced (kept strongly, the
    entries of closed connections would pile up), and ``get_server_pid()`` is
    reused by a later session that lacks the tables. So the private ``_con``;
    the tests of ``staging`` with a pool fail if it ever changes."""
    if isinstance(conn, PoolConnectionProxy):
        held: asyncpg.Connection | None = conn._con  # type: ignore[attr-defined]
        if held is None:
            raise asyncpg.InterfaceError("the connection has been released to the pool")
        return held
    return conn


@asynccontextmanager
async def staging(conn: Connection) -> AsyncIterator[None]:
    """Around one transaction that stages rows: the session's tables exist, and
    stay clean however the transaction ends (a commit empties them itself)."""
    if conn.is_in_transaction():
        raise RuntimeError("staging() goes around the transaction, not inside it")
    session = _session(conn)
    state = _SESSIONS_WITH_STAGING.get(session)
    if state is None:
        # Outside a transaction: one implicit transaction, all three or none.
        await conn.execute(CREATE_STAGING)
        state = _SESSIONS_WITH_STAGING[session] = _Staged()
    state.rows = 0
    try:
        yield
    except BaseException:
        try:
            usable = not conn.is_closed() and not conn.is_in_transaction()
        except asyncpg.InterfaceError:  # the connection died and the pool took it back
            usable = False
        if usable:
            try:
                await asyncio.shield(conn.execute(EMPTY_STAGING))
            except Exception as exc:  # the first failure is the one to raise
                log.warning("staging tables not emptied", extra={"error": type(exc).__name__})
        raise
    finally:
        state.rows = None


def _counted(conn: Connection, rows: int) -> None:
    """``rows`` more were COPYed into the session's ``staged``."""
    state = _SESSIONS_WITH_STAGING.get(_session(conn))
    if state is not None and state.rows is not None:
        state.rows += rows


def few_staged(conn: Connection) -> bool:
    """The session's ``staged`` is known to hold fewer rows than need statistics."""
    state = _SESSIONS_WITH_STAGING.get(_session(conn))
    return state is not None and state.rows is not None and state.rows < ANALYZE_FROM_ROWS


async def _copy_staged(conn: Connection, buffer: io.BytesIO, job_id: UUID | None = None) -> None:
    # The CSV keeps null (unquoted empty) and "" (quoted) apart, as COPY reads them.
    if job_id is not None:
        await job_tables.copy_job_rows(conn, job_id, buffer)
        return
    await conn.copy_to_table(STAGED, source=buffer, columns=list(STAGED_COLUMNS), format="csv")


async def stage_rows(conn: Connection, batch: pa.RecordBatch | pa.Table) -> None:
    """COPY a batch into the staging table."""
    await _copy_staged(conn, staged_csv(batch))
    _counted(conn, batch.num_rows)


async def stage_row_groups(
    conn: Connection,
    groups: int,
    read: Callable[[int], pa.Table],
    before: Callable[[], None] = lambda: None,
    after: Callable[[int], Awaitable[None]] | None = None,
    job_id: UUID | None = None,
) -> int:
    """COPY row groups 0…groups-1 (``read(i)``, e.g. of the Parquet report) into staged
    (``job_id``: into that job's own table, see ``create_job_table``).

    The next group is read and written as CSV in a thread while PostgreSQL
    copies the current one, so reading, encoding and COPY overlap on two
    cores (a million rows: ~0.7 s of reading and encoding hidden behind
    ~1.9 s of COPY). ``before`` runs before each COPY (a cancellation check
    raises there), ``after`` with the rows done so far. Returns the rows staged.
    """

    def encode(index: int) -> tuple[io.BytesIO, int]:
        table = read(index)
        return staged_csv(table), table.num_rows

    done = 0
    upcoming: asyncio.Future[tuple[io.BytesIO, int]] | None = None
    if groups:
        upcoming = asyncio.ensure_future(asyncio.to_thread(encode, 0))
    try:
        for index in range(groups):
            assert upcoming is not None
            buffer, rows = await upcoming
            upcoming = (
                asyncio.ensure_future(asyncio.to_thread(encode, index + 1))
                if index + 1 < groups
                else None
            )
            before()
            await _copy_staged(conn, buffer, job_id)
            if job_id is None:
                _counted(conn, rows)
            done += rows
            if after is not None:
                await after(done)
    finally:
        if upcoming is not None:
            # Stopped early (a cancel, a failed COPY): the group read ahead is not
            # wanted, whatever became of it; the first failure is the one raised.
            upcoming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await upcoming
    return done


async def stage_file_identities(conn: Connection, identities: Iterable[pa.Array]) -> None:
    """Every identity number that appears in the file, valid row or not.

    COPYed from the report's identity columns as pyarrow writes them (no
    Python strings); a number may appear more than once, which the anti-join
    that reads the table does not mind.
    """
    for column in identities:
        buffer = identities_csv(column)
        if buffer is None:
            continue
        await conn.copy_to_table("file_identities", source=buffer, format="csv")
    # Statistics, or the planner probes the anti-join row by row.
    await conn.execute("ANALYZE file_identities")
