"""OneRoster 1.1 and 1.2 CSV zips: the students of the unit's org, mapped columns, deltas."""

from __future__ import annotations

import io
import zipfile

import pytest

from rosterflow.events import FileFormat
from services.validator.errors import FileError
from services.validator.mapping import Remembered, header_key
from services.validator.sheet import MAX_PART
from tests.support.checks import NUMBERS, issues_by_line, run_check, valid_identities
from tests.support.oneroster import USERS_11, USERS_12, Roster, Student

ONEROSTER = FileFormat.ONEROSTER


def _mapped(
    version: str, column: str = "identifier", org: str = "school-1"
) -> dict[str, Remembered]:
    header = USERS_12 if version == "1.2" else USERS_11
    return {header_key(header): Remembered({column: "identity"}, org)}


def _roster(version: str) -> Roster:
    return Roster(
        version=version,
        students=[
            Student("s1", "Märta", "Åberg", NUMBERS[0], grade="07"),
            Student("s2", "Bo", "Öst", NUMBERS[1], grade="KG"),
            Student("s3", "Siv", "Ek", NUMBERS[2], grade="08", org="school-2"),
            Student("s4", "Per", "Lind", NUMBERS[3], grade="PK"),
        ],
        enrolments=[("s1", "class-ma7"), ("s1", "class-7a"), ("s2", "class-ma7"),
                    ("s3", "class-8b")],
    )  # fmt: skip


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_the_students_of_the_units_org_are_read_with_grade_and_class(version: str) -> None:
    result = run_check(_roster(version).to_zip(), fmt=ONEROSTER, mappings=_mapped(version))

    rows = result.valid.select(
        ["identity_number", "given_name", "school_form", "grade_year", "class_name"]
    ).to_pylist()
    assert rows == [
        {"identity_number": NUMBERS[0], "given_name": "Märta", "school_form": "compulsory",
         "grade_year": 7, "class_name": "7A"},
        {"identity_number": NUMBERS[1], "given_name": "Bo", "school_form": "preschool_class",
         "grade_year": 0, "class_name": "Matematik 7"},
        {"identity_number": NUMBERS[3], "given_name": "Per", "school_form": None,
         "grade_year": None, "class_name": None},
    ]  # fmt: skip
    # Per's grade PK is no grade of a Swedish school and he is in no class: a warning.
    assert list(issues_by_line(result).values()) == [["grade_missing"]]
    assert result.detected.format is ONEROSTER
    assert result.detected.columns["identity"] == "identifier"


def test_the_identity_number_may_come_from_user_ids() -> None:
    result = run_check(
        _roster("1.1").to_zip(), fmt=ONEROSTER, mappings=_mapped("1.1", column="userIds")
    )
    assert valid_identities(result) == [NUMBERS[0], NUMBERS[1], NUMBERS[3]]


def test_without_a_mapping_the_check_lists_the_columns_and_the_orgs() -> None:
    with pytest.raises(FileError) as raised:
        run_check(_roster("1.2").to_zip(), fmt=ONEROSTER)
    error = raised.value
    assert error.code == "file_missing_column"
    assert error.columns is not None
    suggested = {c["name"]: c["suggestion"] for c in error.columns["unmatched"]}
    assert suggested["identifier"] == "identity"  # by its values
    assert {o["sourcedId"] for o in error.columns["orgs"]} == {
        "district-1", "school-1", "school-2"
    }  # fmt: skip


def test_an_identity_column_without_an_org_asks_for_the_org() -> None:
    with pytest.raises(FileError) as raised:
        run_check(_roster("1.1").to_zip(), fmt=ONEROSTER, mappings=_mapped("1.1", org="nowhere"))
    assert raised.value.code == "file_org_not_mapped"
    assert raised.value.columns is not None
    assert raised.value.columns["orgs"]


def test_a_delta_leaves_out_who_is_to_be_deleted_and_takes_the_latest_change() -> None:
    roster = Roster(
        delta=True,
        students=[
            Student("s1", "Märta", "Åberg", NUMBERS[0], status="active",
                    modified="2026-08-01T10:00:00Z"),
            Student("s1", "Märta", "Åberg-Ek", NUMBERS[0], status="active",
                    modified="2026-08-02T10:00:00Z"),
            Student("s2", "Bo", "Öst", NUMBERS[1], status="tobedeleted",
                    modified="2026-08-02T10:00:00Z"),
        ],
    )  # fmt: skip
    result = run_check(roster.to_zip(), fmt=ONEROSTER, mappings=_mapped("1.1"))
    assert result.valid.select(["identity_number", "family_name"]).to_pylist() == [
        {"identity_number": NUMBERS[0], "family_name": "Åberg-Ek"}
    ]


def test_an_invalid_roster_hits_the_row_rules() -> None:
    bad = NUMBERS[4][:-1] + str((int(NUMBERS[4][-1]) + 1) % 10)
    roster = Roster(
        students=[
            Student("s1", "Märta", "Åberg", bad),
            Student("s2", "", "Öst", NUMBERS[1]),
            Student("s3", "Siv", "", NUMBERS[2]),
            Student("s4", "Per", "Lind", ""),
            Student("s5", "Eva", "Holm", NUMBERS[3], grade="11"),
            Student("s6", "Ola", "Berg", NUMBERS[5], email="inte-en-adress"),
        ]
    )
    result = run_check(roster.to_zip(), fmt=ONEROSTER, mappings=_mapped("1.1"))
    codes = {code for found in issues_by_line(result).values() for code in found}
    assert {"identity_bad_check_digit", "given_name_missing", "family_name_missing",
            "identity_missing", "grade_invalid", "email_invalid"} <= codes  # fmt: skip
    assert valid_identities(result) == [NUMBERS[5]]


def test_a_member_that_would_unpack_beyond_the_limit_is_refused_unexpanded() -> None:
    files = _roster("1.1").files()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("manifest.csv", "orgs.csv", "classes.csv", "enrollments.csv"):
            archive.writestr(name, "\r\n".join(",".join(r) for r in files[name]))
        archive.writestr("users.csv", b"\0" * (MAX_PART + 1))
    with pytest.raises(FileError) as raised:
        run_check(buffer.getvalue(), fmt=ONEROSTER, max_bytes=10**9)
    assert raised.value.code == "file_sheet_too_large"


def test_a_zip_without_the_oneroster_files_is_unreadable() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("elever.csv", "Personnummer;Förnamn;Efternamn\r\n")
    with pytest.raises(FileError) as raised:
        run_check(buffer.getvalue(), fmt=ONEROSTER)
    assert raised.value.code == "file_unreadable"
