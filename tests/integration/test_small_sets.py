"""Small sets (below ``arrays.ARRAY_ROWS``) are classified and applied from
arrays, without the session's staging tables, with the same results as staged sets."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import pyarrow as pa
import pytest

from rosterflow import db, events
from rosterflow.journal import arrays, merge, staging
from rosterflow.settings import Settings
from rosterflow.testing import School, sample_roster, school_age_numbers, seed_school
from services.ingest import commands
from tests.support.pipeline import new_admin, pipeline
from tests.support.staging import staged_table

YEAR = "2026/2027"
OTHER_YEAR = "2025/2026"
NUMBERS = school_age_numbers()
A, B, C, D, E, F = NUMBERS[:6]


def _rows(rows: list[tuple[str, str, int, str]]) -> pa.Table:
    """(identity number, given name, grade, class) → the staged columns."""
    count = len(rows)
    return staged_table(
        count,
        identity_number=pa.array([r[0] for r in rows]),
        identity_kind=pa.array(["personnummer"] * count),
        given_name=pa.array([r[1] for r in rows]),
        family_name=pa.array(["Berg"] * count),
        school_form=pa.array(["compulsory"] * count),
        grade_year=pa.array([r[2] for r in rows], type=pa.int16()),
        class_name=pa.array([r[3] for r in rows]),
        email=pa.array([f"{r[0]}@example.org" for r in rows]),
    )


async def _staged(
    conn: db.Connection, school: School, year: str, table: pa.Table
) -> tuple[events.ImportCounts, events.ImportCounts]:
    """Plan and apply through the session's staging table: (plan, applied)."""
    assert not arrays.as_arrays(table.num_rows)  # the test lowered the threshold
    async with staging.staging(conn), conn.transaction():
        await staging.stage_rows(conn, table)
        plan = await merge.classify_staged(conn, school.organisation_id, school.unit_id, year)
    async with staging.staging(conn), conn.transaction():
        await staging.stage_rows(conn, table)
        applied = await merge.apply_staged(conn, school.organisation_id, school.unit_id, year)
    return plan, applied


async def _arrays(
    conn: db.Connection, school: School, year: str, table: pa.Table
) -> tuple[events.ImportCounts, events.ImportCounts]:
    """Plan and apply from arrays, in transactions of their own: (plan, applied)."""
    assert arrays.as_arrays(table.num_rows)
    rows = arrays.RowArrays.of(table)
    plan = await merge.classify_staged(conn, school.organisation_id, school.unit_id, year, rows)
    async with conn.transaction():
        applied = await merge.apply_staged(conn, school.organisation_id, school.unit_id, year, rows)
    return plan, applied


async def _journal(conn: db.Connection, school: School) -> list[tuple[object, ...]]:
    """What the journal holds of a school, keyed by identity number (ids and times aside)."""
    rows = await conn.fetch(
        """SELECT p.identity_number, p.identity_kind, p.given_name, p.family_name, p.email,
                  p.phone, p.street, p.postcode, p.city,
                  e.status, e.archived_at IS NULL AS not_archived, e.archived_by_job,
                  pl.school_year, pl.school_form, pl.grade_year, pl.class_name
             FROM patients p
             LEFT JOIN enrolments e ON e.patient_id = p.id AND e.unit_id = $2
             LEFT JOIN placements pl ON pl.patient_id = p.id AND pl.unit_id = $2
            WHERE p.organisation_id = $1
            ORDER BY p.identity_number, pl.school_year""",
        school.organisation_id,
        school.unit_id,
    )
    return [tuple(r.values()) for r in rows]


async def _versions(conn: db.Connection, school: School) -> dict[tuple[str, str], str]:
    """Each journal row's xmin: a row written again gets a new one."""
    rows = await conn.fetch(
        """SELECT 'patient' AS kind, p.identity_number AS key, p.xmin::text AS v
             FROM patients p WHERE p.organisation_id = $1
           UNION ALL
           SELECT 'enrolment', p.identity_number, e.xmin::text
             FROM enrolments e JOIN patients p ON p.id = e.patient_id WHERE e.unit_id = $2
           UNION ALL
           SELECT 'placement ' || pl.school_year, p.identity_number, pl.xmin::text
             FROM placements pl JOIN patients p ON p.id = pl.patient_id WHERE pl.unit_id = $2""",
        school.organisation_id,
        school.unit_id,
    )
    return {(r["kind"], r["key"]): r["v"] for r in rows}


async def _prepare(conn: db.Connection, school: School) -> None:
    """The journal before the import: A–D this year, E only in another year, C archived."""
    async with conn.transaction():
        this_year = arrays.RowArrays.of(
            _rows(
                [
                    (A, "Alva", 3, "3A"),
                    (B, "Bo", 3, "3A"),
                    (C, "Cleo", 4, "4B"),
                    (D, "Dan", 5, "5C"),
                ]
            )
        )
        await merge.apply_staged(conn, school.organisation_id, school.unit_id, YEAR, this_year)
        other_year = arrays.RowArrays.of(_rows([(E, "Ebba", 2, "2A")]))
        await merge.apply_staged(
            conn, school.organisation_id, school.unit_id, OTHER_YEAR, other_year
        )
    await conn.execute(
        """UPDATE enrolments e SET status = 'archived', archived_at = now()
             FROM patients p
            WHERE p.id = e.patient_id AND e.unit_id = $1 AND p.identity_number = $2""",
        school.unit_id,
        C,
    )


# Unchanged, a changed name, an archived enrolment, a changed class, a placement
# only in another year, a new patient.
IMPORT = [
    (A, "Alva", 3, "3A"),
    (B, "Bosse", 3, "3A"),
    (C, "Cleo", 4, "4B"),
    (D, "Dan", 5, "5D"),
    (E, "Ebba", 3, "3A"),
    (F, "Frida", 1, "1A"),
]


async def test_both_sides_of_the_threshold_plan_and_apply_the_same(
    database_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = await db.connect(database_dsn)
    try:
        by_arrays, by_table = await seed_school(conn), await seed_school(conn)
        for school in (by_arrays, by_table):
            await _prepare(conn, school)
        assert await _journal(conn, by_arrays) == await _journal(conn, by_table)
        before = {school: await _versions(conn, school) for school in (by_arrays, by_table)}
        table = _rows(IMPORT)

        plan_a, applied_a = await _arrays(conn, by_arrays, YEAR, table)
        monkeypatch.setattr(arrays, "ARRAY_ROWS", 0)
        plan_t, applied_t = await _staged(conn, by_table, YEAR, table)

        expected = events.ImportCounts(created=1, updated=3, reactivated=1, unchanged=1)
        assert plan_a == applied_a == plan_t == applied_t == expected
        contents = await _journal(conn, by_arrays)
        assert contents == await _journal(conn, by_table)
        assert [r[:3] for r in contents if r[12] == YEAR] == sorted(
            (n, "personnummer", name) for n, name, _, _ in IMPORT
        )
        # F's patient, enrolment and placement came from one statement: the
        # enrolment's and placement's foreign keys found the patient inserted
        # beside them.
        assert (F, "active") in [(r[0], r[9]) for r in contents]
        for school in (by_arrays, by_table):
            after = await _versions(conn, school)
            # What changes nothing is not written: A entirely, B's enrolment and
            # placement, C's patient and placement, D's patient and enrolment,
            # E's patient, enrolment and other year's placement.
            untouched = {
                ("patient", A), ("enrolment", A), (f"placement {YEAR}", A),
                ("enrolment", B), (f"placement {YEAR}", B),
                ("patient", C), (f"placement {YEAR}", C),
                ("patient", D), ("enrolment", D),
                ("patient", E), ("enrolment", E), (f"placement {OTHER_YEAR}", E),
            }  # fmt: skip
            assert {k: after[k] for k in untouched} == {k: before[school][k] for k in untouched}
            written = {
                ("patient", B), ("enrolment", C), (f"placement {YEAR}", D),
                (f"placement {YEAR}", E), ("patient", F),
            }  # fmt: skip
            assert all(after[k] != before[school].get(k) for k in written)
            assert len(after) == len(before[school]) + 4  # E's placement, F's three rows
    finally:
        await conn.close()


async def _temporary_use(conn: db.Connection) -> int:
    """Scans and row changes of this session's temporary tables counted so far and
    not yet reported; nothing is reported inside a transaction, so the difference
    between two reads in one transaction is that transaction's use."""
    used = await conn.fetchval(
        """SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0) + n_tup_ins + n_tup_upd
                               + n_tup_del), 0)
             FROM pg_stat_xact_all_tables s JOIN pg_class c ON c.oid = s.relid
            WHERE c.relnamespace = pg_my_temp_schema()"""
    )
    return int(used)


async def test_a_small_set_touches_no_temporary_table(database_dsn: str) -> None:
    conn = await db.connect(database_dsn)
    try:
        school = await seed_school(conn)
        table = _rows(IMPORT)
        # The session has the staging tables, as a pooled connection does.
        async with staging.staging(conn), conn.transaction():
            before = await _temporary_use(conn)
            await staging.stage_rows(conn, table)
            assert await _temporary_use(conn) > before  # the check sees staging
        rows = arrays.RowArrays.of(table)
        for _ in range(2):  # new patients, then unchanged ones
            async with conn.transaction():
                before = await _temporary_use(conn)
                await merge.classify_staged(
                    conn, school.organisation_id, school.unit_id, YEAR, rows
                )
                await merge.apply_staged(conn, school.organisation_id, school.unit_id, YEAR, rows)
                assert await _temporary_use(conn) == before
            assert await conn.fetchval(
                "SELECT count(*) FROM patients WHERE organisation_id = $1", school.organisation_id
            ) == len(IMPORT)
    finally:
        await conn.close()


async def test_a_failure_mid_apply_leaves_nothing_applied(database_dsn: str) -> None:
    conn = await db.connect(database_dsn)
    try:
        school = await seed_school(conn)
        rows = arrays.RowArrays.of(_rows(IMPORT))
        # The enrolments' unit does not exist: the statement fails at its end, in
        # the foreign key checks, after its patients were inserted.
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            async with conn.transaction():
                await merge.apply_staged(conn, school.organisation_id, uuid4(), YEAR, rows)

        # A failure after the apply, inside its transaction (as the importer's state change).
        async def apply_then_fail() -> None:
            async with conn.transaction():
                applied = await merge.apply_staged(
                    conn, school.organisation_id, school.unit_id, YEAR, rows
                )
                assert applied.created == len(IMPORT)
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            await apply_then_fail()
        for table in ("patients", "enrolments", "placements"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    finally:
        await conn.close()


async def _temporary_tables(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM pg_class WHERE relpersistence = 't'"))


async def test_the_services_plan_and_import_a_small_file_without_staging_tables(
    settings: Settings, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = new_admin()
    small, staged = await seed_school(conn), await seed_school(conn, name="Norrskolan")
    roster = sample_roster(30, NUMBERS)
    results = []
    async with pipeline(settings, "ingest", "validator", "importer", "archiver") as p:
        for school in (small, staged):
            if school is staged:
                monkeypatch.setattr(arrays, "ARRAY_ROWS", 30)
            upload = await p.upload(school, roster.to_csv().encode())
            validated = await p.tap.next(events.JobValidated, upload.job_id)
            await commands.confirm(p.any, upload.job_id, admin)
            applied = await p.tap.next(events.ImportApplied, upload.job_id)
            await p.tap.next(events.JobFinished, upload.job_id)
            # No session of the services holds a temporary table, unless staged.
            progress = await conn.fetchrow(
                "SELECT progress_stage, progress_done, progress_total FROM jobs WHERE id = $1",
                upload.job_id,
            )
            assert progress is not None
            results.append(
                (validated.plan, applied.counts, await _temporary_tables(conn), tuple(progress))
            )
    (plan_a, counts_a, temporary_a, progress_a), (plan_t, counts_t, temporary_t, progress_t) = (
        results
    )
    # A one-statement import records no progress; a staged one its rows staged.
    assert progress_a == (None, None, None)
    assert progress_t == ("importing", 30, 30)
    assert temporary_a == 0
    assert temporary_t > 0  # the staged path's tables are seen by the same check
    assert (plan_a, counts_a) == (plan_t, counts_t)
    assert counts_a.created == plan_a.create == 30
    assert await _journal(conn, small) == await _journal(conn, staged)
