"""A guardian file's rows in the journal: guardians of the unit's active students and
nothing else, the same by each of the importer's three ways to apply rows, a protected
student's guardians without contact data, and nothing written when nothing changed."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pyarrow as pa
import pytest

from rosterflow import db, events
from rosterflow.journal import arrays, job_tables, merge, staging
from rosterflow.journal.encoding import staged_csv
from rosterflow.report import CONTACT_COLUMNS, GUARDIAN_FIELDS
from rosterflow.testing import School, school_age_numbers, seed_school
from tests.support.staging import staged_table

YEAR = "2026/2027"
A, B, C, ELSEWHERE = school_age_numbers()[:4]
KARIN, OLOF, EVA = school_age_numbers(1970, 1985)[:3]
HOME = {
    "email": "hem@example.org", "phone": "070-111 22 33", "phone_2": None, "phone_3": None,
    "street": "Storgatan 1", "postcode": "123 45", "city": "Umeå",
}  # fmt: skip


def _guardian(n: int, name: str, identity: str | None, contact: dict[str, Any]) -> dict[str, Any]:
    return {f"guardian{n}_{field}": value for field, value in
            {"name": name, "identity_number": identity, **contact}.items()}  # fmt: skip


def _rows(rows: list[dict[str, Any]], *, students: bool = False) -> pa.Table:
    """Staged rows: a roster's students (``students``), else a guardian file's rows as the
    validator writes them (the student's identity number, one guardian, no names)."""
    count = len(rows)
    names = {name for row in rows for name in row} - {"identity_number", "protected_identity"}
    given = {name: pa.array([row.get(name) for row in rows], pa.string()) for name in names}
    if students:
        given |= {
            "given_name": pa.array(["Elev"] * count),
            "family_name": pa.array(["Berg"] * count),
        }
    return staged_table(
        count,
        identity_number=pa.array([row["identity_number"] for row in rows]),
        identity_kind=pa.array(["personnummer"] * count),
        protected_identity=pa.array([row.get("protected_identity", False) for row in rows]),
        **given,
    )


# The unit's students: A open with a guardian, B protected, C open; ELSEWHERE is a
# patient of the organisation but of another unit.
STUDENTS = [
    {"identity_number": A, **HOME, **_guardian(1, "Karin Berg", KARIN, HOME)},
    {"identity_number": B, "protected_identity": True},
    {"identity_number": C},
]
# The guardian file: A's Karin moved and a second guardian; B's guardian with an
# address (the journal's mark keeps it out); C's; a student of another unit.
GUARDIAN_FILE = [
    {"identity_number": A, **_guardian(1, "Karin Berg", KARIN, HOME | {"street": "Nygatan 3"})},
    {"identity_number": B, **_guardian(1, "Eva Ek", EVA, HOME)},
    {"identity_number": A, **_guardian(2, "Olof Berg", OLOF, {"email": "olof@example.org"})},
    {"identity_number": C, **_guardian(1, "Nils Lund", None, {"phone": "070-222 33 44"})},
    {"identity_number": ELSEWHERE, **_guardian(1, "Ingen Alls", None, HOME)},
]


async def _by_arrays(
    conn: db.Connection, school: School, table: pa.Table, guardians_only: bool
) -> tuple[Any, Any]:
    rows = arrays.RowArrays.of(table)
    args = (conn, school.organisation_id, school.unit_id, YEAR, rows)
    plan = await merge.classify_staged(*args, guardians_only=guardians_only)
    async with conn.transaction():
        applied = await merge.apply_staged(*args, guardians_only=guardians_only)
    return plan, applied


async def _by_staging(
    conn: db.Connection, school: School, table: pa.Table, guardians_only: bool
) -> tuple[Any, Any]:
    args = (conn, school.organisation_id, school.unit_id, YEAR)
    async with staging.staging(conn), conn.transaction():
        await staging.stage_rows(conn, table)
        plan = await merge.classify_staged(*args, guardians_only=guardians_only)
    async with staging.staging(conn), conn.transaction():
        await staging.stage_rows(conn, table)
        applied = await merge.apply_staged(*args, guardians_only=guardians_only)
    return plan, applied


async def _by_job_table(
    conn: db.Connection, school: School, table: pa.Table, guardians_only: bool
) -> tuple[Any, Any]:
    job_id = uuid4()
    args = (conn, school.organisation_id, school.unit_id, YEAR)
    async with staging.staging(conn), conn.transaction():
        name = await job_tables.create_job_table(conn, job_id)
        await job_tables.copy_job_rows(conn, job_id, staged_csv(table))
        plan = await merge.classify_staged(*args, name, guardians_only=guardians_only)
    async with staging.staging(conn), conn.transaction():
        applied = await merge.apply_staged(*args, name, guardians_only=guardians_only)
    await job_tables.drop_job_table(conn, job_id)
    return plan, applied


PATHS = {"arrays": _by_arrays, "staging": _by_staging, "job_table": _by_job_table}


async def _guardians(conn: db.Connection, school: School) -> list[tuple[object, ...]]:
    fields = ", ".join(f"g.{f}" for f in GUARDIAN_FIELDS)
    rows = await conn.fetch(
        f"""SELECT p.identity_number, g.position, {fields}
              FROM guardians g JOIN patients p ON p.id = g.patient_id
             WHERE p.organisation_id = $1 ORDER BY p.identity_number, g.position""",
        school.organisation_id,
    )
    return [tuple(r.values()) for r in rows]


async def _versions(conn: db.Connection, school: School) -> dict[tuple[str, str], str]:
    """Each row's xmin (patients, their enrolments and placements, guardians): a row
    written again gets a new one."""
    rows = await conn.fetch(
        """SELECT p.identity_number AS key, 'patient' AS what, p.xmin::text AS v
             FROM patients p WHERE p.organisation_id = $1
           UNION ALL
           SELECT p.identity_number, 'enrolment', e.xmin::text
             FROM enrolments e JOIN patients p ON p.id = e.patient_id
            WHERE p.organisation_id = $1
           UNION ALL
           SELECT p.identity_number, 'placement', pl.xmin::text
             FROM placements pl JOIN patients p ON p.id = pl.patient_id
            WHERE p.organisation_id = $1
           UNION ALL
           SELECT p.identity_number, g.position::text, g.xmin::text
             FROM guardians g JOIN patients p ON p.id = g.patient_id
            WHERE p.organisation_id = $1""",
        school.organisation_id,
    )
    return {(r["key"], r["what"]): r["v"] for r in rows}


@pytest.mark.parametrize("path", list(PATHS))
async def test_a_guardian_file_writes_the_guardians_of_the_units_students_only(
    database_dsn: str, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    if path != "arrays":
        monkeypatch.setattr(arrays, "ARRAY_ROWS", 0)
    apply = PATHS[path]
    conn = await db.connect(database_dsn)
    try:
        school = await seed_school(conn)
        other = await seed_school(conn, name="Annan skola")
        await _by_arrays(conn, school, _rows(STUDENTS, students=True), False)
        # The same organisation's patient, active in another of its units.
        await conn.execute(
            "UPDATE units SET organisation_id = $1 WHERE id = $2",
            school.organisation_id,
            other.unit_id,
        )
        elsewhere = School(school.organisation_id, other.unit_id)
        await _by_arrays(conn, elsewhere, _rows([{"identity_number": ELSEWHERE}], students=True),
                         False)  # fmt: skip
        before = await _versions(conn, school)

        plan, applied = await apply(conn, school, _rows(GUARDIAN_FILE), True)

        assert plan == applied == events.ImportCounts(
            created=0, updated=0, unchanged=0, reactivated=0,
            guardians_created=3, guardians_updated=1, guardians_unchanged=0,
        )  # fmt: skip
        no_contact = (None,) * len(CONTACT_COLUMNS)
        assert await _guardians(conn, school) == [
            (A, 1, "Karin Berg", KARIN, *(HOME | {"street": "Nygatan 3"}).values()),
            (A, 2, "Olof Berg", OLOF, "olof@example.org", *no_contact[1:]),
            # B is protected in the journal: the guardian without contact data.
            (B, 1, "Eva Ek", EVA, *no_contact),
            (C, 1, "Nils Lund", None, None, "070-222 33 44", *no_contact[2:]),
        ]
        written = await _versions(conn, school)
        # No patient, enrolment or placement was written; only guardians.
        assert {k: v for k, v in written.items() if not k[1].isdigit()} == {
            k: v for k, v in before.items() if not k[1].isdigit()
        }
        assert written[(A, "1")] != before[(A, "1")]

        # The same file again changes nothing, and writes nothing.
        again_plan, again = await apply(conn, school, _rows(GUARDIAN_FILE), True)
        assert again_plan == again == events.ImportCounts(
            created=0, updated=0, unchanged=0, reactivated=0, guardians_unchanged=4
        )  # fmt: skip
        assert await _versions(conn, school) == written
    finally:
        await conn.close()


async def test_a_student_archived_since_the_check_gets_no_guardian(database_dsn: str) -> None:
    conn = await db.connect(database_dsn)
    try:
        school = await seed_school(conn)
        await _by_arrays(conn, school, _rows(STUDENTS, students=True), False)
        await conn.execute(
            """UPDATE enrolments SET status = 'archived', archived_at = now()
                WHERE unit_id = $1 AND patient_id =
                      (SELECT id FROM patients WHERE identity_number = $2)""",
            school.unit_id,
            C,
        )

        _, applied = await _by_arrays(conn, school, _rows(GUARDIAN_FILE), True)

        assert applied.guardians_created == 2  # A's second, B's; not C's
        assert C not in {row[0] for row in await _guardians(conn, school)}
    finally:
        await conn.close()
