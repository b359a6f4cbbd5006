"""Classify the staged rows against the journal (the plan) and apply them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple
from uuid import UUID

import asyncpg

from rosterflow.db import Connection
from rosterflow.events import ImportCounts
from rosterflow.journal import staging
from rosterflow.journal.arrays import WITHOUT_GUARDIANS, RowArrays, Staged, rows_from_arrays
from rosterflow.journal.staging import STAGED
from rosterflow.report import CONTACT_COLUMNS, GUARDIAN_FIELDS, STAGED_COLUMNS

# From this many new or re-activated patients on, an import refreshes statistics.
BULK_ROWS = 10_000

# A patient's own data as the staged rows carry it, compared and written as one.
PATIENT_COLUMNS = (
    "identity_kind", "given_name", "family_name", *CONTACT_COLUMNS, "protected_identity",
)  # fmt: skip
_GUARDIAN_CONTACT = ", ".join(f"{{g}}.{c}" for c in CONTACT_COLUMNS)


def _given(position: int, row: str) -> str:
    """The row (``row``: its alias and a dot, or nothing) names the guardian at ``position``."""
    return f"num_nonnulls({', '.join(f'{row}guardian{position}_{f}' for f in GUARDIAN_FIELDS)}) > 0"


def _guardian_state(position: int) -> str:
    """What the file does to the student's guardian at ``position``: 'new', 'changed',
    'withheld' (a protected student's stored contact data to clear), or null: nothing.

    A guardian the file leaves blank stays as stored: a file without guardian
    columns says nothing about them."""
    g, s = f"g{position}", f"s.guardian{position}_"
    given = _given(position, "s.")
    stored = ", ".join(f"{g}.{f}" for f in GUARDIAN_FIELDS)
    return f"""CASE WHEN {given} AND {g}.patient_id IS NULL THEN 'new'
            WHEN {given} AND ({stored}) IS DISTINCT FROM
                 ({", ".join(s + f for f in GUARDIAN_FIELDS)}) THEN 'changed'
            WHEN NOT ({given}) AND s.protected_identity
                 AND num_nonnulls({_GUARDIAN_CONTACT.format(g=g)}) > 0 THEN 'withheld'
       END AS guardian{position}_state"""


_SQL_PARTS = {
    "patient_p": ", ".join(f"p.{c}" for c in PATIENT_COLUMNS),
    "patient_s": ", ".join(f"s.{c}" for c in PATIENT_COLUMNS),
    "guardian_states": ",\n       ".join(_guardian_state(n) for n in (1, 2)),
    "guardian_joins": "\n  ".join(
        f"LEFT JOIN guardians g{n} ON g{n}.patient_id = p.id AND g{n}.position = {n}"
        for n in (1, 2)
    ),
    "patient": ", ".join(PATIENT_COLUMNS),
    "patient_set": ", ".join(f"{c} = r.{c}" for c in PATIENT_COLUMNS),
    "guardian_counts": """count(*) FILTER (WHERE guardian1_state = 'new')
              + count(*) FILTER (WHERE guardian2_state = 'new') AS guardians_new,
       count(*) FILTER (WHERE guardian1_state IN ('changed', 'withheld'))
              + count(*) FILTER (WHERE guardian2_state IN ('changed', 'withheld'))
              AS guardians_changed,
       count(*) FILTER (WHERE guardian1_state IS NULL AND {given1})
              + count(*) FILTER (WHERE guardian2_state IS NULL AND {given2})
              AS guardians_same""".format(given1=_given(1, ""), given2=_given(2, "")),
}


# The same parts for rows that leave every guardian as stored (``arrays.WITHOUT_GUARDIANS``).
_SQL_PARTS_WITHOUT_GUARDIANS = {
    **_SQL_PARTS,
    "guardian_states": "NULL::text AS guardian1_state, NULL::text AS guardian2_state",
    "guardian_joins": "",
    "guardian_counts": "0 AS guardians_new, 0 AS guardians_changed, 0 AS guardians_same",
}


def _fill(sql: str, *, guardians: bool = True) -> str:
    """The statement with its column lists, leaving {staged} and the parameters' names."""
    for name, part in (_SQL_PARTS if guardians else _SQL_PARTS_WITHOUT_GUARDIANS).items():
        sql = sql.replace("{" + name + "}", part)
    return sql


class Write(NamedTuple):
    """One write of an apply, reading the resolved rows alone."""

    name: str
    runs_if: str
    """The resolved rows' count that says it has something to do."""
    params: tuple[str, ...]
    """The parameters it uses: {organisation}, {unit}, {year} in its text."""
    sql: str


def _guardian_writes(position: int) -> tuple[Write, ...]:
    """The writes of the guardians at ``position``: the new, the changed, the withheld."""
    fields = ", ".join(GUARDIAN_FIELDS)
    given = ", ".join(f"guardian{position}_{f}" for f in GUARDIAN_FIELDS)

    def update(state: str, assignments: str) -> Write:
        return Write(
            f"guardians{position}_{state}",
            "guardians_changed",
            (),
            f"""UPDATE guardians g SET {assignments}, updated_at = now()
  FROM resolved r
 WHERE r.guardian{position}_state = '{state}'
   AND g.patient_id = r.patient_id AND g.position = {position}""",
        )

    return (
        Write(
            f"guardians{position}_new",
            "guardians_new",
            (),
            f"""INSERT INTO guardians (patient_id, position, {fields})
SELECT patient_id, {position}, {given}
  FROM resolved WHERE guardian{position}_state = 'new'""",
        ),
        update("changed", ", ".join(f"{f} = r.guardian{position}_{f}" for f in GUARDIAN_FIELDS)),
        update("withheld", ", ".join(f"{c} = NULL" for c in CONTACT_COLUMNS)),
    )


# What applying the staged rows would do, read in one pass before any write.
# A patient counts once: created, else re-activated, else updated when any of
# their data, their enrolment or this year's placement differs.
_CLASSIFY = """
SELECT count(*) AS staged,
       count(*) FILTER (WHERE p.id IS NULL) AS created,
       count(*) FILTER (WHERE e.status = 'archived') AS reactivated,
       count(*) FILTER (
           WHERE p.id IS NOT NULL AND e.status IS DISTINCT FROM 'archived' AND (
                 e.patient_id IS NULL
              OR ({patient_p}) IS DISTINCT FROM ({patient_s})
              OR (pl.school_form, pl.grade_year, pl.class_name)
                 IS DISTINCT FROM (s.school_form, s.grade_year, s.class_name)
              OR pl.patient_id IS NULL)) AS updated,
       {guardian_counts}
  FROM {staged} s
  LEFT JOIN patients p ON p.organisation_id = $1 AND p.identity_number = s.identity_number
  {guardian_joins}
  LEFT JOIN enrolments e ON e.unit_id = $2 AND e.patient_id = p.id
  LEFT JOIN placements pl ON pl.unit_id = $2 AND pl.school_year = $3 AND pl.patient_id = p.id
  CROSS JOIN LATERAL (SELECT {guardian_states}) gs
"""
CLASSIFY = _fill(_CLASSIFY)

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
_RESOLVED_ROWS = """
SELECT s.*,
       coalesce(p.id, gen_random_uuid()) AS patient_id,
       p.id IS NULL AS new_patient,
       p.id IS NOT NULL
         AND ({patient_p}) IS DISTINCT FROM ({patient_s}) AS patient_changed,
       e.status AS enrolment_status,
       pl.patient_id IS NULL AS new_placement,
       pl.patient_id IS NOT NULL
         AND (pl.school_form, pl.grade_year, pl.class_name)
             IS DISTINCT FROM (s.school_form, s.grade_year, s.class_name) AS placement_changed,
       {guardian_states}
  FROM {staged} s
  LEFT JOIN patients p ON p.organisation_id = $1 AND p.identity_number = s.identity_number
  {guardian_joins}
  LEFT JOIN enrolments e ON e.unit_id = $2 AND e.patient_id = p.id
  LEFT JOIN placements pl ON pl.unit_id = $2 AND pl.school_year = $3 AND pl.patient_id = p.id
 ORDER BY patient_id
"""
RESOLVE = "INSERT INTO resolved" + _fill(_RESOLVED_ROWS)
# The same classification as CLASSIFY, read off the resolved rows.
_COUNT_RESOLVED = """
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
       count(*) FILTER (WHERE placement_changed) AS placements_changed,
       {guardian_counts}
  FROM resolved
"""
COUNT_RESOLVED = _fill(_COUNT_RESOLVED)
# The writes, each reading the resolved rows alone. Their parameters are named
# here ({organisation}, {unit}, {year}) and numbered for each use: as statements
# of their own after RESOLVE, or as the parts of APPLY_ROWS.
WRITES: tuple[Write, ...] = (
    Write(
        "patients_new",
        "created",
        ("organisation",),
        _fill("""INSERT INTO patients (id, organisation_id, identity_number, {patient})
SELECT patient_id, {organisation}, identity_number, {patient}
  FROM resolved WHERE new_patient"""),
    ),
    Write(
        "patients_changed",
        "patients_changed",
        (),
        _fill("""UPDATE patients p
   SET {patient_set}, updated_at = now()
  FROM resolved r
 WHERE r.patient_changed AND p.id = r.patient_id"""),
    ),
    Write(
        "enrolments_new",
        "enrolments_new",
        ("unit",),
        """INSERT INTO enrolments (patient_id, unit_id)
SELECT patient_id, {unit} FROM resolved WHERE enrolment_status IS NULL""",
    ),
    Write(
        "enrolments_reactivated",
        "reactivated",
        ("unit",),
        """UPDATE enrolments e
   SET status = 'active', archived_at = NULL, archived_by_job = NULL, activated_at = now()
  FROM resolved r
 WHERE r.enrolment_status = 'archived' AND e.unit_id = {unit} AND e.patient_id = r.patient_id""",
    ),
    Write(
        "placements_new",
        "placements_new",
        ("unit", "year"),
        """INSERT INTO placements (patient_id, unit_id, school_year, school_form, grade_year,
                        class_name)
SELECT patient_id, {unit}, {year}, school_form, grade_year, class_name
  FROM resolved WHERE new_placement""",
    ),
    Write(
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
GUARDIAN_WRITES = tuple(write for position in (1, 2) for write in _guardian_writes(position))
WRITES = (*WRITES, *GUARDIAN_WRITES)
# As statements of their own, after RESOLVE filled the session's ``resolved``:
# each numbers the parameters it uses in their order.
WRITE_STATEMENTS = {
    name: sql.format(**{p: f"${i}" for i, p in enumerate(params, 1)})
    for name, _, params, sql in WRITES
}


# A small set's statements: the same text as the staged ones, reading the rows
# from arrays. The apply is one statement: RESOLVE's rows as a CTE, the writes
# as data-modifying CTEs reading it, and COUNT_RESOLVED's counts as its result.
# A write with nothing to do scans the resolved rows and stops there (EXPLAIN:
# its join is never executed). The foreign keys are checked at the end of the
# statement, so an enrolment finds the patient a sibling CTE inserted.
# Each comes in two: by ``RowArrays.guardians``, with the guardians' columns, or
# without them for rows that leave every guardian as stored.
def _apply_rows(resolved_rows: str, writes: tuple[Write, ...], counts: str) -> str:
    return (
        f"WITH resolved AS MATERIALIZED ({resolved_rows}),\n"
        + ",\n".join(
            f"{name} AS (\n{sql.format(organisation='$1', unit='$2', year='$3')}\n)"
            for name, _, _, sql in writes
        )
        + counts
    )


def _arrays(guardians: bool) -> str:
    return rows_from_arrays(4, STAGED_COLUMNS if guardians else WITHOUT_GUARDIANS)


CLASSIFY_ROWS = {
    guardians: _fill(_CLASSIFY, guardians=guardians).format(staged=_arrays(guardians))
    for guardians in (True, False)
}
APPLY_ROWS = {
    guardians: _apply_rows(
        _fill(_RESOLVED_ROWS, guardians=guardians).format(staged=_arrays(guardians)),
        WRITES if guardians else tuple(w for w in WRITES if w not in GUARDIAN_WRITES),
        _fill(_COUNT_RESOLVED, guardians=guardians),
    )
    for guardians in (True, False)
}

# A guardian file (FileFormat.guardians_only): its rows, up to two a student
# each naming one guardian, as one row a student of the unit, shaped like a
# staged row: the student's own data as stored (the file changes nothing of
# theirs), their guardians as the file names them (each row names one, so
# max() per column takes the one given), and the mark of a protected identity
# from the journal, which keeps the guardians' contact data out as a student
# file's mark does. A student not active in the unit is not in it: the check
# made their rows invalid, and one archived since is left alone.
_GUARDIAN_VALUES = ",\n       ".join(
    f"max(f.guardian{n}_{field}) AS guardian{n}_{field}"
    if field not in CONTACT_COLUMNS
    else f"CASE WHEN p.protected_identity THEN NULL ELSE max(f.guardian{n}_{field}) END"
    f" AS guardian{n}_{field}"
    for n in (1, 2)
    for field in GUARDIAN_FIELDS
)
STUDENT_GUARDIANS = f"""(
SELECT p.identity_number, p.identity_kind, p.given_name, p.family_name,
       NULL::text AS school_form, NULL::smallint AS grade_year, NULL::text AS class_name,
       {", ".join(f"p.{c}" for c in CONTACT_COLUMNS)}, p.protected_identity,
       {_GUARDIAN_VALUES}
  FROM {{staged}} f
  JOIN patients p ON p.organisation_id = $1 AND p.identity_number = f.identity_number
  JOIN enrolments e ON e.unit_id = $2 AND e.patient_id = p.id AND e.status = 'active'
 GROUP BY p.id)"""
# RESOLVED_ROWS for a guardian file: nothing but the guardians differs.
GUARDIAN_RESOLVED_ROWS = _fill(f"""
SELECT s.*, p.id AS patient_id, false AS new_patient, false AS patient_changed,
       'active' AS enrolment_status, false AS new_placement, false AS placement_changed,
       {{guardian_states}}
  FROM {STUDENT_GUARDIANS} s
  JOIN patients p ON p.organisation_id = $1 AND p.identity_number = s.identity_number
  {{guardian_joins}}
 ORDER BY patient_id
""")
COUNT_GUARDIANS = _fill("""
SELECT {guardian_counts}
  FROM resolved
""")
GUARDIAN_CLASSIFY = "WITH resolved AS (" + GUARDIAN_RESOLVED_ROWS + ")" + COUNT_GUARDIANS
# A guardian file's rows always give a guardian: its arrays carry every column.
_GUARDIAN_ARRAYS = rows_from_arrays(3)


@dataclass(frozen=True)
class _Kind:
    """The statements of one kind of import: a roster's, or a guardian file's."""

    classify: str
    classify_rows: dict[bool, str]
    """By ``RowArrays.guardians``."""
    resolve: str
    count: str
    apply_rows: dict[bool, str]
    writes: tuple[Write, ...]
    counts: Callable[[asyncpg.Record], ImportCounts]
    with_year: bool
    """Whether the statements take the school year ($3) after the organisation and unit."""

    def args(self, organisation_id: UUID, unit_id: UUID, school_year: str) -> tuple[object, ...]:
        year = (school_year,) if self.with_year else ()
        return (organisation_id, unit_id, *year)


def _counts(row: asyncpg.Record) -> ImportCounts:
    """CLASSIFY's or COUNT_RESOLVED's counts: a patient counts once."""
    created, updated, reactivated = row["created"], row["updated"], row["reactivated"]
    return _guardian_counts(row).model_copy(
        update={
            "created": created,
            "updated": updated,
            "reactivated": reactivated,
            "unchanged": row["staged"] - created - updated - reactivated,
        }
    )


def _guardian_counts(row: asyncpg.Record | None) -> ImportCounts:
    """A guardian file's counts (guardians only: it writes no patient); None: no rows."""
    return ImportCounts(
        created=0,
        updated=0,
        unchanged=0,
        reactivated=0,
        guardians_created=row["guardians_new"] if row else 0,
        guardians_updated=row["guardians_changed"] if row else 0,
        guardians_unchanged=row["guardians_same"] if row else 0,
    )


_ROSTER = _Kind(
    CLASSIFY, CLASSIFY_ROWS, RESOLVE, COUNT_RESOLVED, APPLY_ROWS, WRITES, _counts, with_year=True
)
_GUARDIAN_FILE = _Kind(
    GUARDIAN_CLASSIFY,
    {True: GUARDIAN_CLASSIFY.format(staged=_GUARDIAN_ARRAYS)},
    "INSERT INTO resolved" + GUARDIAN_RESOLVED_ROWS,
    COUNT_GUARDIANS,
    {
        True: _apply_rows(
            GUARDIAN_RESOLVED_ROWS.format(staged=_GUARDIAN_ARRAYS), GUARDIAN_WRITES, COUNT_GUARDIANS
        )
    },
    GUARDIAN_WRITES,
    _guardian_counts,
    with_year=False,
)


def _kind(guardians_only: bool) -> _Kind:
    return _GUARDIAN_FILE if guardians_only else _ROSTER


async def lock_organisation(conn: Connection, organisation_id: UUID) -> None:
    """Held until the transaction ends; call inside it."""
    await conn.execute(LOCK_ORGANISATION, str(organisation_id))


async def classify_staged(
    conn: Connection,
    organisation_id: UUID,
    unit_id: UUID,
    school_year: str,
    staged: Staged = STAGED,
    *,
    guardians_only: bool = False,
) -> ImportCounts:
    """What applying would do (the plan); nothing is written but statistics.

    ``staged``: the relation of the staged rows, or the rows themselves (``RowArrays``);
    ``guardians_only``: the rows are a guardian file's."""
    kind = _kind(guardians_only)
    args = kind.args(organisation_id, unit_id, school_year)
    if isinstance(staged, RowArrays):
        if staged.guardians not in kind.classify_rows:
            return _guardian_counts(None)  # a guardian file without a valid row
        row = await conn.fetchrow(kind.classify_rows[staged.guardians], *args, *staged.columns)
        assert row is not None
        return kind.counts(row)
    # A new table has no statistics until analysed; without them the planner
    # joins a million rows by nested loops. A job's own table keeps them for
    # the importer. Of a job's table only the join key is analysed: the
    # planner needs the row count and the identity numbers' distinctness, and
    # statistics of every column cost a million-row plan ~0.5 s.
    if staged != STAGED:
        await conn.execute(f"ANALYZE {staged} (identity_number)")
    elif not staging.few_staged(conn):
        await conn.execute(f"ANALYZE {staged}")
    row = await conn.fetchrow(kind.classify.format(staged=staged), *args)
    assert row is not None
    return kind.counts(row)


async def apply_staged(
    conn: Connection,
    organisation_id: UUID,
    unit_id: UUID,
    school_year: str,
    staged: Staged = STAGED,
    *,
    guardians_only: bool = False,
) -> ImportCounts:
    """Apply the staged rows (``staged``: a job's own table, analysed by the plan, or
    the rows themselves, ``RowArrays``); a row that changes nothing writes nothing.
    A guardian file's rows (``guardians_only``) write guardians and nothing else."""
    kind = _kind(guardians_only)
    args = kind.args(organisation_id, unit_id, school_year)
    await lock_organisation(conn, organisation_id)
    if isinstance(staged, RowArrays):
        if staged.guardians not in kind.apply_rows:
            return _guardian_counts(None)  # a guardian file without a valid row
        # One statement, no temporary table: RESOLVE, the writes and the counts.
        row = await conn.fetchrow(kind.apply_rows[staged.guardians], *args, *staged.columns)
        assert row is not None
        counts = kind.counts(row)
        await _refresh_statistics(conn, counts)
        return counts
    # Statistics for the temporary tables, or the planner joins a million
    # rows by nested loops.
    if staged == STAGED and not staging.few_staged(conn):
        await conn.execute("ANALYZE staged")
    status: str = await conn.execute(kind.resolve.format(staged=staged), *args)
    if int(status.split()[-1]) >= staging.ANALYZE_FROM_ROWS:
        await conn.execute("ANALYZE resolved")
    row = await conn.fetchrow(kind.count)
    assert row is not None
    counts = kind.counts(row)
    # Each write runs only when the resolved rows hold something for it: a
    # statement with nothing to do still costs its join (an UPDATE of no rows
    # probed the unit's placements once per resolved row, ~5 ms for 200 rows).
    values = {"organisation": organisation_id, "unit": unit_id, "year": school_year}
    for name, runs_if, params, _ in kind.writes:
        if row[runs_if]:
            await conn.execute(WRITE_STATEMENTS[name], *(values[p] for p in params))
    await _refresh_statistics(conn, counts)
    return counts


async def _refresh_statistics(conn: Connection, counts: ImportCounts) -> None:
    if counts.created + counts.reactivated >= BULK_ROWS:
        # Statistics that predate this many new rows make the next readers (the
        # archive set right after this, the next import's join) loop row by
        # row; autovacuum would refresh them, but only some time after commit.
        await conn.execute("ANALYZE patients, enrolments, placements")
