"""Contact data, protected identities and guardians in the journal: the same by each
of the importer's three ways to apply rows, and nothing written when nothing changed."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from rosterflow import db, events
from rosterflow.journal import arrays
from rosterflow.report import CONTACT_COLUMNS, GUARDIAN_FIELDS
from rosterflow.testing import School, school_age_numbers, seed_school
from tests.support.staging import APPLY_PATHS, by_arrays, row_versions, staged_table

A, B, C = school_age_numbers()[:3]
KARIN, OLOF = school_age_numbers(1970, 1985)[:2]
HOME = {
    "email": "hem@example.org", "phone": "070-111 22 33", "phone_2": "08-123 456",
    "phone_3": None, "street": "Storgatan 1", "postcode": "123 45", "city": "Umeå",
}  # fmt: skip
NO_CONTACT = dict.fromkeys(CONTACT_COLUMNS)


def _guardian(n: int, name: str, identity: str | None, contact: dict[str, Any]) -> dict[str, Any]:
    return {f"guardian{n}_{field}": value for field, value in
            {"name": name, "identity_number": identity, **contact}.items()}  # fmt: skip


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as the validator writes them: identity number and given name, the rest as given."""
    count = len(rows)
    names = {name for row in rows for name in row}
    columns = {
        name: pa.array([row.get(name) for row in rows], pa.string())
        for name in names - {"protected_identity", "identity_number", "given_name"}
    }
    return staged_table(
        count,
        identity_number=pa.array([row["identity_number"] for row in rows]),
        identity_kind=pa.array(["personnummer"] * count),
        given_name=pa.array([row["given_name"] for row in rows]),
        family_name=pa.array(["Berg"] * count),
        protected_identity=pa.array([row.get("protected_identity", False) for row in rows]),
        **columns,
    )


# Before: A with an address and a guardian, C with a guardian.
BEFORE = [
    {"identity_number": A, "given_name": "Alva", **HOME, **_guardian(1, "Karin Berg", KARIN, HOME)},
    {"identity_number": C, "given_name": "Cleo", **_guardian(1, "Olof Ek", None, HOME)},
]
# Then: A marked protected in the file (which still names her guardian with an
# address: the validator drops it, this only shows the journal clears what it
# held); B new with two guardians; C's guardian moved, a second one added.
AFTER = [
    {"identity_number": A, "given_name": "Alva", "protected_identity": True},
    {
        "identity_number": B, "given_name": "Bo", **HOME,
        **_guardian(1, "Karin Berg", KARIN, HOME), **_guardian(2, "Olof Berg", OLOF, NO_CONTACT),
    },
    {
        "identity_number": C, "given_name": "Cleo",
        **_guardian(1, "Olof Ek", None, HOME | {"street": "Nygatan 3"}),
        **_guardian(2, "Eva Ek", None, {**NO_CONTACT, "email": "eva@example.org"}),
    },
]  # fmt: skip


PATHS = APPLY_PATHS


async def journal(conn: db.Connection, school: School) -> list[tuple[object, ...]]:
    """A school's patients with their contact data and guardians (ids and times aside)."""
    contact = ", ".join(f"p.{c}" for c in CONTACT_COLUMNS)
    guardian = ", ".join(f"g.{f}" for f in GUARDIAN_FIELDS)
    rows = await conn.fetch(
        f"""SELECT p.identity_number, p.given_name, p.protected_identity, {contact},
                   g.position, {guardian}
              FROM patients p LEFT JOIN guardians g ON g.patient_id = p.id
             WHERE p.organisation_id = $1
             ORDER BY p.identity_number, g.position""",
        school.organisation_id,
    )
    return [tuple(r.values()) for r in rows]


@pytest.mark.parametrize("path", list(PATHS))
async def test_protected_identities_and_guardians_by_each_apply_path(
    database_dsn: str, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    if path != "arrays":
        monkeypatch.setattr(arrays, "ARRAY_ROWS", 0)
    apply = PATHS[path]
    conn = await db.connect(database_dsn)
    try:
        school = await seed_school(conn)
        await by_arrays(conn, school, _table(BEFORE))
        before = await row_versions(conn, school)

        plan, applied = await apply(conn, school, _table(AFTER))

        expected = events.ImportCounts(
            created=1, updated=1, unchanged=1, reactivated=0,
            guardians_created=3, guardians_updated=2,  # A's withheld, C's moved
        )  # fmt: skip
        assert plan == applied == expected
        stored = await journal(conn, school)
        contact = slice(3, 3 + len(CONTACT_COLUMNS))
        a_rows = [r for r in stored if r[0] == A]
        assert [(r[2], set(r[contact])) for r in a_rows] == [(True, {None})]
        # A's guardian keeps name and identity number, not the address.
        assert a_rows[0][10:] == (1, "Karin Berg", KARIN, *NO_CONTACT.values())
        assert [r[10:13] for r in stored if r[0] == B] == [
            (1, "Karin Berg", KARIN), (2, "Olof Berg", OLOF),
        ]  # fmt: skip
        c_rows = [r for r in stored if r[0] == C]
        assert [(r[10], r[11], r[17]) for r in c_rows] == [
            (1, "Olof Ek", "Nygatan 3"), (2, "Eva Ek", None),
        ]  # fmt: skip
        # The same file again changes nothing, and writes nothing.
        written = await row_versions(conn, school)
        # C's own data did not change.
        assert written[("patients", C, None)] == before[("patients", C, None)]
        again_plan, again = await apply(conn, school, _table(AFTER))
        assert (
            again_plan
            == again
            == events.ImportCounts(
                created=0, updated=0, unchanged=3, reactivated=0, guardians_unchanged=4
            )
        )
        assert await row_versions(conn, school) == written
        assert await journal(conn, school) == stored
    finally:
        await conn.close()


@pytest.mark.parametrize("path", list(PATHS))
async def test_a_file_that_names_no_guardian_leaves_them_as_stored(
    database_dsn: str, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    if path != "arrays":
        monkeypatch.setattr(arrays, "ARRAY_ROWS", 0)
    conn = await db.connect(database_dsn)
    try:
        school = await seed_school(conn)
        await by_arrays(conn, school, _table(BEFORE))
        stored, before = await journal(conn, school), await row_versions(conn, school)
        # A's name changes; no guardian column, nobody protected.
        plain = _table(
            [
                {"identity_number": A, "given_name": "Alma", **HOME},
                {"identity_number": C, "given_name": "Cleo"},
            ]
        )
        if path == "arrays":
            assert not arrays.RowArrays.of(plain).guardians  # the statements without them
        plan, applied = await PATHS[path](conn, school, plain)
        assert (
            plan == applied == events.ImportCounts(created=0, updated=1, unchanged=1, reactivated=0)
        )
        after = await row_versions(conn, school)
        assert {k: v for k, v in after.items() if k[0] == "guardians"} == {
            k: v for k, v in before.items() if k[0] == "guardians"
        }  # no guardian row written
        assert [r[:1] + r[2:] for r in await journal(conn, school)] == [
            r[:1] + r[2:] for r in stored
        ]
    finally:
        await conn.close()


async def test_the_three_apply_paths_give_the_same_journal(
    database_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = await db.connect(database_dsn)
    try:
        schools = {path: await seed_school(conn, name=path) for path in PATHS}
        for path, school in schools.items():
            await by_arrays(conn, school, _table(BEFORE))
            monkeypatch.setattr(arrays, "ARRAY_ROWS", 250 if path == "arrays" else 0)
            await PATHS[path](conn, school, _table(AFTER))
        contents = [await journal(conn, school) for school in schools.values()]
        assert contents[0] == contents[1] == contents[2]
        assert len(contents[0]) == 5  # A with one guardian, B and C with two each
    finally:
        await conn.close()


async def test_the_journal_refuses_contact_data_beside_a_protected_identity(
    database_dsn: str,
) -> None:
    import asyncpg

    conn = await db.connect(database_dsn)
    try:
        school = await seed_school(conn)
        await by_arrays(conn, school, _table(BEFORE))
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE patients SET protected_identity = true WHERE identity_number = $1", A
            )
    finally:
        await conn.close()
