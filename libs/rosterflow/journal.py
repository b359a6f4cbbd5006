"""The journal registry's SQL: stage a file's rows, apply them, find the archive set.

Applying is set-based: the valid rows are COPYed into a temporary staging
table, joined once with the journal (RESOLVE: each row's patient id and what
differs, compared with IS DISTINCT FROM), and then only what is new or
changed is inserted or updated in patients, enrolments and placements, so a
row that changes nothing writes nothing. The same join, read-only (CLASSIFY),
is how the validator computes the plan the administrator confirms.

A large job's rows are staged once: the plan COPYs them into an UNLOGGED
table of the job's own (``job_staging."<job id>"``) instead of the session's
temporary ``staged``, and the importer resolves and applies from that table,
against the journal as it is at apply time, then drops it in its own
transaction. When the table is gone (a crash of PostgreSQL empties UNLOGGED
tables, a plan kept too long was swept), the importer stages the rows from
the report again.

A small set (under ARRAY_ROWS rows, ``as_arrays``) is not staged: its
rows are passed as one array per column (``RowArrays``) to the same
statements, composed from the same pieces, and the apply is one statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import asyncpg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from asyncpg.pool import PoolConnectionProxy

from rosterflow.db import Connection
from rosterflow.events import ImportCounts

log = logging.getLogger(__name__)

# The check report's valid rows: what the importer stages, column for column.
VALID_ROWS_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("identity_number", pa.string()),
        ("identity_kind", pa.string()),
        ("given_name", pa.string()),
        ("family_name", pa.string()),
        ("school_form", pa.string()),
        ("grade_year", pa.int16()),
        ("class_name", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("street", pa.string()),
        ("postcode", pa.string()),
        ("city", pa.string()),
    ]
)
STAGED_COLUMNS = VALID_ROWS_SCHEMA.names[1:]
# From this many new or re-activated patients on, an import refreshes statistics.
BULK_ROWS = 10_000
# From this many staged rows on, the staging tables are analysed before they are
# joined. Below it the planner's estimates from the tables' size alone give the
# same plans (index look-ups per row; EXPLAIN, 200 to 5,000 rows against 50,000
# patients), and three ANALYZEs were ~5 ms of backend CPU in a 200-row job.
ANALYZE_FROM_ROWS = 5_000
# Below this many rows a set is not staged but classified and applied from
# arrays (``as_arrays``, ``RowArrays``). Per row the arrays cost more than the
# staging table (Python lists and their encoding in the client; the plan
# cache's generic plan probes the indexes row by row where the staged join,
# planned anew each time, hashes), and the commits they spare cost the same
# whatever the size. Plan + import, backend + client CPU a job against 50,000
# patients (scratch, under the bench lock), new patients / all unchanged:
# 100 rows −9 / −3 ms; 200: −7 / 0…+2.5; 250: −6 / +3; 300: 0 / +5;
# 500: −6 / +12; 1,000: ±10 / +20…35; 4,999: +80…120 / +200.
ARRAY_ROWS = 250

# The session's staging tables: created once per connection, outside any
# transaction (``staging``), and emptied by every commit. Creating and dropping
# them per transaction cost ~5 ms of backend CPU each time (catalog rows for
# every column, invalidations), more than staging and planning 200 rows.
CREATE_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS staged (
    identity_number text NOT NULL,
    identity_kind text NOT NULL,
    given_name text NOT NULL,
    family_name text NOT NULL,
    school_form text,
    grade_year smallint,
    class_name text,
    email text,
    phone text,
    street text,
    postcode text,
    city text
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
    placement_changed boolean NOT NULL
) ON COMMIT DELETE ROWS;
"""


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
# The statements below that read staged rows name their relation {staged}:
# the session's temporary table, or a job's own (job_table).
STAGED = "staged"
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

# What applying the staged rows would do, read in one pass before any write.
# A patient counts once: created, else re-activated, else updated when any of
# their data, their enrolment or this year's placement differs.
CLASSIFY = """
SELECT count(*) AS staged,
       count(*) FILTER (WHERE p.id IS NULL) AS created,
       count(*) FILTER (WHERE e.status = 'archived') AS reactivated,
       count(*) FILTER (
           WHERE p.id IS NOT NULL AND e.status IS DISTINCT FROM 'archived' AND (
                 e.patient_id IS NULL
              OR (p.given_name, p.family_name, p.identity_kind, p.email, p.phone,
                  p.street, p.postcode, p.city)
                 IS DISTINCT FROM
                 (s.given_name, s.family_name, s.identity_kind, s.email, s.phone,
                  s.street, s.postcode, s.city)
              OR (pl.school_form, pl.grade_year, pl.class_name)
                 IS DISTINCT FROM (s.school_form, s.grade_year, s.class_name)
              OR pl.patient_id IS NULL)) AS updated
  FROM {staged} s
  LEFT JOIN patients p ON p.organisation_id = $1 AND p.identity_number = s.identity_number
  LEFT JOIN enrolments e ON e.unit_id = $2 AND e.patient_id = p.id
  LEFT JOIN placements pl ON pl.unit_id = $2 AND pl.school_year = $3 AND pl.patient_id = p.id
"""

# One import or archive at a time per organisation: the counts read before
# the writes stay true, and the inserts below cannot race another import's
# insert of the same patient.
LOCK_ORGANISATION = "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7202611))"

# Applying joins the staged rows with the journal once (the same join as
# CLASSIFY) and keeps, per row, the patient's id (a new one for a new
# patient) and what differs. The writes then read this table alone: no
# second join with patients per target table, and nothing written for what
# is already so.
#
# The rows are kept in patient id order, so every write below goes through
# them in the order of the indexes they insert into (patients, enrolments and
# placements all have the patient id in their primary key) and of the foreign
# key checks' look-ups in patients' primary key: neighbouring pages, instead
# of a random page per row for ids drawn at random. A million new patients:
# the three inserts took 56 s instead of 77 s (EXPLAIN ANALYZE, one run each;
# the runs vary by ±10 %), the sort ~0.9 s.
RESOLVED_ROWS = """
SELECT s.*,
       coalesce(p.id, gen_random_uuid()) AS patient_id,
       p.id IS NULL AS new_patient,
       p.id IS NOT NULL
         AND (p.given_name, p.family_name, p.identity_kind, p.email, p.phone,
              p.street, p.postcode, p.city)
             IS DISTINCT FROM
             (s.given_name, s.family_name, s.identity_kind, s.email, s.phone,
              s.street, s.postcode, s.city) AS patient_changed,
       e.status AS enrolment_status,
       pl.patient_id IS NULL AS new_placement,
       pl.patient_id IS NOT NULL
         AND (pl.school_form, pl.grade_year, pl.class_name)
             IS DISTINCT FROM (s.school_form, s.grade_year, s.class_name) AS placement_changed
  FROM {staged} s
  LEFT JOIN patients p ON p.organisation_id = $1 AND p.identity_number = s.identity_number
  LEFT JOIN enrolments e ON e.unit_id = $2 AND e.patient_id = p.id
  LEFT JOIN placements pl ON pl.unit_id = $2 AND pl.school_year = $3 AND pl.patient_id = p.id
 ORDER BY patient_id
"""
RESOLVE = "INSERT INTO resolved" + RESOLVED_ROWS
# The same classification as CLASSIFY, read off the resolved rows.
COUNT_RESOLVED = """
SELECT count(*) AS staged,
       count(*) FILTER (WHERE new_patient) AS created,
       count(*) FILTER (WHERE enrolment_status = 'archived') AS reactivated,
       count(*) FILTER (
           WHERE NOT new_patient AND enrolment_status IS DISTINCT FROM 'archived'
             AND (enrolment_status IS NULL OR patient_changed
                  OR new_placement OR placement_changed)) AS updated,
       count(*) FILTER (WHERE patient_changed) AS patients_changed,
       count(*) FILTER (WHERE enrolment_status IS NULL) AS enrolments_new,
       count(*) FILTER (WHERE new_placement) AS placements_new,
       count(*) FILTER (WHERE placement_changed) AS placements_changed
  FROM resolved
"""
# The writes, each reading the resolved rows alone. Their parameters are named
# here ({organisation}, {unit}, {year}) and numbered for each use: as statements
# of their own after RESOLVE, or as the parts of APPLY_ROWS.
WRITES = (
    # (name, the resolved rows' count that says it has something to do, the
    # parameters it uses, statement)
    (
        "patients_new",
        "created",
        ("organisation",),
        """INSERT INTO patients (id, organisation_id, identity_number, identity_kind, given_name,
                      family_name, email, phone, street, postcode, city)
SELECT patient_id, {organisation}, identity_number, identity_kind, given_name, family_name,
       email, phone, street, postcode, city
  FROM resolved WHERE new_patient""",
    ),
    (
        "patients_changed",
        "patients_changed",
        (),
        """UPDATE patients p
   SET given_name = r.given_name, family_name = r.family_name,
       identity_kind = r.identity_kind, email = r.email, phone = r.phone,
       street = r.street, postcode = r.postcode, city = r.city, updated_at = now()
  FROM resolved r
 WHERE r.patient_changed AND p.id = r.patient_id""",
    ),
    (
        "enrolments_new",
        "enrolments_new",
        ("unit",),
        """INSERT INTO enrolments (patient_id, unit_id)
SELECT patient_id, {unit} FROM resolved WHERE enrolment_status IS NULL""",
    ),
    (
        "enrolments_reactivated",
        "reactivated",
        ("unit",),
        """UPDATE enrolments e
   SET status = 'active', archived_at = NULL, archived_by_job = NULL, activated_at = now()
  FROM resolved r
 WHERE r.enrolment_status = 'archived' AND e.unit_id = {unit} AND e.patient_id = r.patient_id""",
    ),
    (
        "placements_new",
        "placements_new",
        ("unit", "year"),
        """INSERT INTO placements (patient_id, unit_id, school_year, school_form, grade_year,
                        class_name)
SELECT patient_id, {unit}, {year}, school_form, grade_year, class_name
  FROM resolved WHERE new_placement""",
    ),
    (
        "placements_changed",
        "placements_changed",
        ("unit", "year"),
        """UPDATE placements pl
   SET school_form = r.school_form, grade_year = r.grade_year,
       class_name = r.class_name, updated_at = now()
  FROM resolved r
 WHERE r.placement_changed
   AND pl.unit_id = {unit} AND pl.school_year = {year} AND pl.patient_id = r.patient_id""",
    ),
)
# As statements of their own, after RESOLVE filled the session's ``resolved``:
# each numbers the parameters it uses in their order.
WRITE_STATEMENTS = {
    name: sql.format(**{p: f"${i}" for i, p in enumerate(params, 1)})
    for name, _, params, sql in WRITES
}
INSERT_PATIENTS = WRITE_STATEMENTS["patients_new"]
UPDATE_PATIENTS = WRITE_STATEMENTS["patients_changed"]
INSERT_ENROLMENTS = WRITE_STATEMENTS["enrolments_new"]
REACTIVATE_ENROLMENTS = WRITE_STATEMENTS["enrolments_reactivated"]
INSERT_PLACEMENTS = WRITE_STATEMENTS["placements_new"]
UPDATE_PLACEMENTS = WRITE_STATEMENTS["placements_changed"]

# A small set's rows need no staging table: the statements read them from one
# array per column ($first…, in STAGED_COLUMNS' order), and a transaction that
# touches no temporary table commits without PostgreSQL truncating the
# session's ON COMMIT DELETE ROWS tables (~1.2 ms of backend CPU a commit,
# against 0.04 ms, two commits a job). asyncpg sends the arrays in binary.
_ARRAY_TYPES = {pa.string(): "text", pa.int16(): "int2"}


def rows_from_arrays(first: int) -> str:
    """The relation of the rows passed as arrays from parameter ``first`` on."""
    arrays = ", ".join(
        f"${first + i}::{_ARRAY_TYPES[VALID_ROWS_SCHEMA.field(name).type]}[]"
        for i, name in enumerate(STAGED_COLUMNS)
    )
    return f"(SELECT * FROM unnest({arrays}) AS staged_rows ({', '.join(STAGED_COLUMNS)}))"


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

ARCHIVE = """
UPDATE enrolments e SET status = 'archived', archived_at = now(), archived_by_job = $3
  FROM unnest($2::uuid[]) AS chosen (patient_id)
 WHERE e.unit_id = $1 AND e.patient_id = chosen.patient_id AND e.status = 'active'
"""

HOLD_RATIO = "SELECT archive_hold_ratio FROM organisations WHERE id = $1"

# A small set's statements: the same text as the staged ones, reading the rows
# from arrays. The apply is one statement: RESOLVE's rows as a CTE, the writes
# as data-modifying CTEs reading it, and COUNT_RESOLVED's counts as its result.
# A write with nothing to do scans the resolved rows and stops there (EXPLAIN:
# its join is never executed). The foreign keys are checked at the end of the
# statement, so an enrolment finds the patient a sibling CTE inserted.
CLASSIFY_ROWS = CLASSIFY.format(staged=rows_from_arrays(4))
COUNT_JOINING_ROWS = COUNT_JOINING.format(staged=rows_from_arrays(3))
APPLY_ROWS = (
    "WITH resolved AS MATERIALIZED ("
    + RESOLVED_ROWS.format(staged=rows_from_arrays(4))
    + "),\n"
    + ",\n".join(
        f"{name} AS (\n{sql.format(organisation='$1', unit='$2', year='$3')}\n)"
        for name, _, _, sql in WRITES
    )
    + COUNT_RESOLVED
)


@dataclass(frozen=True)
class RowArrays:
    """A small set's rows, one list per staged column (STAGED_COLUMNS' order):
    classified and applied from these, with no staging table."""

    columns: tuple[list[object], ...]

    @classmethod
    def of(cls, table: pa.Table) -> RowArrays:
        return cls(tuple(table.column(name).to_pylist() for name in STAGED_COLUMNS))


def as_arrays(rows: int) -> bool:
    """A set of this many rows is classified and applied from arrays (``RowArrays``)."""
    return rows < ARRAY_ROWS


Staged = str | RowArrays


@dataclass(frozen=True)
class ArchivePlan:
    patient_ids: list[UUID]
    active: int
    hold_ratio: Decimal

    @property
    def held(self) -> bool:
        """Archiving more than the organisation's share of active patients waits."""
        return len(self.patient_ids) > self.hold_ratio * self.active


async def create_staging(conn: Connection) -> None:
    """The staging tables, if this session lacks them (inside a transaction, they
    last only if it commits: prefer ``staging`` around the transaction)."""
    await conn.execute(CREATE_STAGING)


def _session(conn: Connection) -> asyncpg.Connection:
    """The connection itself: the pool lends it through a new proxy on every acquire.

    asyncpg offers no public way from the proxy to its connection; the tests
    of ``staging`` with a pool fail if its private ``_con`` ever changes."""
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


def _few_staged(conn: Connection) -> bool:
    """The session's ``staged`` is known to hold fewer rows than need statistics."""
    state = _SESSIONS_WITH_STAGING.get(_session(conn))
    return state is not None and state.rows is not None and state.rows < ANALYZE_FROM_ROWS


def staged_csv(batch: pa.RecordBatch | pa.Table) -> io.BytesIO:
    """The batch's staged columns as CSV, written by pyarrow (no Python row objects),
    for the COPY into a staging table (``stage_rows``, ``copy_job_rows``)."""
    buffer = io.BytesIO()
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    pacsv.write_csv(
        table.select(list(STAGED_COLUMNS)),
        buffer,
        pacsv.WriteOptions(include_header=False),
    )
    buffer.seek(0)
    return buffer


async def _copy_staged(conn: Connection, buffer: io.BytesIO, job_id: UUID | None = None) -> None:
    # The CSV keeps null (unquoted empty) and "" (quoted) apart, as COPY reads them.
    if job_id is not None:
        await copy_job_rows(conn, job_id, buffer)
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


async def stage_file_identities(conn: Connection, identities: Iterable[pa.Array]) -> None:
    """Every identity number that appears in the file, valid row or not.

    COPYed from the report's identity columns as pyarrow writes them (no
    Python strings); a number may appear more than once, which the anti-join
    that reads the table does not mind.
    """
    for column in identities:
        present = pc.drop_null(column)
        if len(present) == 0:
            continue
        buffer = io.BytesIO()
        pacsv.write_csv(
            pa.table({"identity_number": present}),
            buffer,
            pacsv.WriteOptions(include_header=False),
        )
        buffer.seek(0)
        await conn.copy_to_table("file_identities", source=buffer, format="csv")
    # Statistics, or the planner probes the anti-join row by row.
    await conn.execute("ANALYZE file_identities")


async def lock_organisation(conn: Connection, organisation_id: UUID) -> None:
    """Held until the transaction ends; call inside it."""
    await conn.execute(LOCK_ORGANISATION, str(organisation_id))


async def classify_staged(
    conn: Connection,
    organisation_id: UUID,
    unit_id: UUID,
    school_year: str,
    staged: Staged = STAGED,
) -> ImportCounts:
    """What applying would do (the plan); nothing is written but statistics.

    ``staged``: the relation of the staged rows, or the rows themselves (``RowArrays``)."""
    if isinstance(staged, RowArrays):
        row = await conn.fetchrow(
            CLASSIFY_ROWS, organisation_id, unit_id, school_year, *staged.columns
        )
        assert row is not None
        return _counts(row)
    # A new table has no statistics until analysed; without them the planner
    # joins a million rows by nested loops. A job's own table keeps them for
    # the importer. Of a job's table only the join key is analysed: the
    # planner needs the row count and the identity numbers' distinctness, and
    # statistics of every column cost a million-row plan ~0.5 s.
    if staged != STAGED:
        await conn.execute(f"ANALYZE {staged} (identity_number)")
    elif not _few_staged(conn):
        await conn.execute(f"ANALYZE {staged}")
    row = await conn.fetchrow(CLASSIFY.format(staged=staged), organisation_id, unit_id, school_year)
    assert row is not None
    return _counts(row)


def _counts(row: asyncpg.Record) -> ImportCounts:
    """CLASSIFY's or COUNT_RESOLVED's counts: a patient counts once."""
    created, updated, reactivated = row["created"], row["updated"], row["reactivated"]
    return ImportCounts(
        created=created,
        updated=updated,
        reactivated=reactivated,
        unchanged=row["staged"] - created - updated - reactivated,
    )


async def apply_staged(
    conn: Connection,
    organisation_id: UUID,
    unit_id: UUID,
    school_year: str,
    staged: Staged = STAGED,
) -> ImportCounts:
    """Apply the staged rows (``staged``: a job's own table, analysed by the plan, or
    the rows themselves, ``RowArrays``); a row that changes nothing writes nothing."""
    await lock_organisation(conn, organisation_id)
    if isinstance(staged, RowArrays):
        # One statement, no temporary table: RESOLVE, the writes and the counts.
        row = await conn.fetchrow(
            APPLY_ROWS, organisation_id, unit_id, school_year, *staged.columns
        )
        assert row is not None
        counts = _counts(row)
        await _refresh_statistics(conn, counts)
        return counts
    # Statistics for the temporary tables, or the planner joins a million
    # rows by nested loops.
    if staged == STAGED and not _few_staged(conn):
        await conn.execute("ANALYZE staged")
    status: str = await conn.execute(
        RESOLVE.format(staged=staged), organisation_id, unit_id, school_year
    )
    if int(status.split()[-1]) >= ANALYZE_FROM_ROWS:
        await conn.execute("ANALYZE resolved")
    row = await conn.fetchrow(COUNT_RESOLVED)
    assert row is not None
    counts = _counts(row)
    # Each write runs only when the resolved rows hold something for it: a
    # statement with nothing to do still costs its join (an UPDATE of no rows
    # probed the unit's placements once per resolved row, ~5 ms for 200 rows).
    values = {"organisation": organisation_id, "unit": unit_id, "year": school_year}
    for name, count, params, _ in WRITES:
        if row[count]:
            await conn.execute(WRITE_STATEMENTS[name], *(values[p] for p in params))
    await _refresh_statistics(conn, counts)
    return counts


async def _refresh_statistics(conn: Connection, counts: ImportCounts) -> None:
    if counts.created + counts.reactivated >= BULK_ROWS:
        # Statistics that predate this many new rows make the next readers (the
        # archive set right after this, the next import's join) loop row by
        # row; autovacuum would refresh them, but only some time after commit.
        await conn.execute("ANALYZE patients, enrolments, placements")


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
                COUNT_JOINING_ROWS, organisation_id, unit_id, *staged.columns
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
