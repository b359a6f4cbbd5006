"""A guardian file's rows in the journal: guardians of the unit's active students and
nothing else, the same by each of the importer's three ways to apply rows, a protected
student's guardians without contact data, and nothing written when nothing changed."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from rosterflow import db, events
from rosterflow.journal import arrays
from rosterflow.report import CONTACT_COLUMNS, GUARDIAN_FIELDS
from rosterflow.testing import School, school_age_numbers, seed_school
from tests.support.staging import APPLY_PATHS, by_arrays, row_versions, staged_table

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


PATHS = APPLY_PATHS


async def _guardians(conn: db.Connection, school: School) -> list[tuple[object, ...]]:
    fields = ", ".join(f"g.{f}" for f in GUARDIAN_FIELDS)
    rows = await conn.fetch(
        f"""SELECT p.identity_number, g.position, {fields}
              FROM guardians g JOIN patients p ON p.id = g.patient_id
             WHERE p.organisation_id = $1 ORDER BY p.identity_number, g.position""",
        school.organisation_id,
    )
    return [tuple(r.values()) for r in rows]


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
        await by_arrays(conn, school, _rows(STUDENTS, students=True))
        # The same organisation's patient, active in another of its units.
        await conn.execute(
            "UPDATE units SET organisation_id = $1 WHERE id = $2",
            school.organisation_id,
            other.unit_id,
        )
        elsewhere = School(school.organisation_id, other.unit_id)
        await by_arrays(conn, elsewhere, _rows([{"identity_number": ELSEWHERE}], students=True))
        before = await row_versions(conn, school)

        plan, applied = await apply(conn, school, _rows(GUARDIAN_FILE), guardians_only=True)

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
        written = await row_versions(conn, school)
        # No patient, enrolment or placement was written; only guardians.
        assert {k: v for k, v in written.items() if k[0] != "guardians"} == {
            k: v for k, v in before.items() if k[0] != "guardians"
        }
        assert written[("guardians", A, 1)] != before[("guardians", A, 1)]

        # The same file again changes nothing, and writes nothing.
        again_plan, again = await apply(conn, school, _rows(GUARDIAN_FILE), guardians_only=True)
        assert again_plan == again == events.ImportCounts(
            created=0, updated=0, unchanged=0, reactivated=0, guardians_unchanged=4
        )  # fmt: skip
        assert await row_versions(conn, school) == written
    finally:
        await conn.close()


async def test_a_student_archived_since_the_check_gets_no_guardian(database_dsn: str) -> None:
    conn = await db.connect(database_dsn)
    try:
        school = await seed_school(conn)
        await by_arrays(conn, school, _rows(STUDENTS, students=True))
        await conn.execute(
            """UPDATE enrolments SET status = 'archived', archived_at = now()
                WHERE unit_id = $1 AND patient_id =
                      (SELECT id FROM patients WHERE identity_number = $2)""",
            school.unit_id,
            C,
        )

        _, applied = await by_arrays(conn, school, _rows(GUARDIAN_FILE), guardians_only=True)

        assert applied.guardians_created == 2  # A's second, B's; not C's
        assert C not in {row[0] for row in await _guardians(conn, school)}
    finally:
        await conn.close()
