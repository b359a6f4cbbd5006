"""SchoolSoft's guardian file checked as SchoolSoft writes it: a row a guardian, keyed by
the student's identity number, made up to two guardians of each known student."""

from __future__ import annotations

from typing import Any

import pytest

from rosterflow.events import FileFormat
from rosterflow.testing import school_age_numbers
from services.validator import check
from services.validator.errors import FileError
from services.validator.formats import FORMATS
from tests.support.checks import Checked, issues_by_line, run_check
from tests.support.workbooks import xlsx

STUDENTS = school_age_numbers()[:6]
GUARDIANS = school_age_numbers(1970, 1985)[:8]
HEADER = (
    "student_socialnumber;socialnumber;firstname;lastname;email;mobile;phone;workphone;"
    "address;zipcode;city"
)


def dashed(number: str) -> str:
    """As SchoolSoft writes an identity number: YYYYMMDD-NNNN."""
    return f"{number[:8]}-{number[8:]}"


def guardian_file(*rows: str, encoding: str = "cp1252") -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode(encoding)


def row(student: str, guardian: str, first: str, last: str, rest: str = ";;;;;;") -> str:
    return f"{dashed(student)};{guardian};{first};{last};{rest}"


def guardians_of(result: Checked) -> dict[str, list[dict[str, Any]]]:
    """Each student's guardians in the valid rows, by position."""
    found: dict[str, list[dict[str, Any]]] = {}
    for r in result.valid.to_pylist():
        for n in (1, 2):
            if r[f"guardian{n}_name"] is not None:
                guardian = {k.removeprefix(f"guardian{n}_"): v for k, v in r.items()
                            if k.startswith(f"guardian{n}_")}  # fmt: skip
                found.setdefault(r["identity_number"], []).append({"position": n, **guardian})
    return {k: sorted(v, key=lambda g: g["position"]) for k, v in found.items()}


def test_a_guardian_file_as_schoolsoft_writes_it_becomes_two_guardians_a_student() -> None:
    a, b, c = STUDENTS[:3]
    data = guardian_file(
        row(
            a,
            dashed(GUARDIANS[0]),
            "Karin",
            "Åberg",
            'karin@example.org;070-111 22 33;08-123 456;;"Storgatan 1; lgh 1102";12345;Umeå',
        ),
        row(b, dashed(GUARDIANS[2]), "Sven", "Öst", "sven@example.org;;;;;;"),
        # The second guardian of the first student, after another student's.
        row(a, "", "Olof", "Åberg", ";0701234567;;031-22 33 44;;;"),
        row(c, GUARDIANS[3], "Eva", "Lund", ";;;;;;"),
    )

    result = run_check(data, fmt=FileFormat.SCHOOLSOFT_GUARDIANS, students=STUDENTS)

    assert result.counts.valid == 4
    assert (result.counts.invalid, result.counts.warnings) == (0, 0)
    assert result.detected.delimiter == ";"
    assert result.detected.columns["identity"] == "student_socialnumber"
    found = guardians_of(result)
    assert [(g["position"], g["name"], g["identity_number"]) for g in found[a]] == [
        (1, "Karin Åberg", GUARDIANS[0]), (2, "Olof Åberg", None),
    ]  # fmt: skip
    karin, olof = found[a]
    assert (karin["street"], karin["postcode"], karin["phone_2"]) == (
        "Storgatan 1; lgh 1102", "123 45", "08-123 456",
    )  # fmt: skip
    assert (olof["phone"], olof["phone_3"]) == ("0701234567", "031-22 33 44")
    assert [g["position"] for g in found[b]] == [1]
    assert [g["name"] for g in found[c]] == ["Eva Lund"]
    # The rows name no student: their names stay as the journal has them.
    assert set(result.valid.column("given_name").to_pylist()) == {None}
    assert set(result.valid.column("protected_identity").to_pylist()) == {False}


def test_utf8_with_a_bom_and_a_workbook_read_the_same() -> None:
    rows = [row(STUDENTS[0], GUARDIANS[0], "Märta", "Ödman", "m@example.org;;;;;;")]
    windows = run_check(guardian_file(*rows), fmt=FileFormat.SCHOOLSOFT_GUARDIANS,
                        students=STUDENTS)  # fmt: skip
    bom = run_check(guardian_file(*rows, encoding="utf-8-sig"),
                    fmt=FileFormat.SCHOOLSOFT_GUARDIANS, students=STUDENTS)  # fmt: skip
    sheet = xlsx(HEADER.split(";"), rows[0].split(";"))
    workbook = run_check(sheet, fmt=FileFormat.SCHOOLSOFT_GUARDIANS, students=STUDENTS)

    assert guardians_of(windows) == guardians_of(bom)
    assert guardians_of(bom)[STUDENTS[0]][0]["name"] == "Märta Ödman"
    # A workbook's empty cells are no values either: the same guardian.
    assert guardians_of(workbook)[STUDENTS[0]][0] == guardians_of(bom)[STUDENTS[0]][0]
    assert workbook.detected.header_line == 1


def test_every_row_rule_of_a_guardian_file() -> None:
    a, b, c, d = STUDENTS[:4]
    unknown = school_age_numbers()[40]
    bad_check_digit = STUDENTS[4][:-1] + str((int(STUDENTS[4][-1]) + 1) % 10)
    data = guardian_file(
        row(a, GUARDIANS[0], "Karin", "Berg", "inte-en-adress;12;;;;1234;Umeå"),  # 2
        row(unknown, GUARDIANS[1], "Nils", "Okänd"),  # 3
        row(bad_check_digit, GUARDIANS[2], "Rut", "Fel"),  # 4
        row(b, "19800101-0000", "Ola", "Berg"),  # 5
        row(a, GUARDIANS[0], "Karin", "Berg", "inte-en-adress;12;;;;1234;Umeå"),  # 6
        row(a, GUARDIANS[3], "Olof", "Berg"),  # 7
        row(a, GUARDIANS[4], "Tredje", "Berg"),  # 8
        row(c, GUARDIANS[5], "Eva", "Ek", "eva@example.org;;;;;;"),  # 9
        row(c, GUARDIANS[5], "Eva", "Ek", "eva.ek@example.org;;;;;;"),  # 10
        row(d, GUARDIANS[6], "", "Lind"),  # 11
        "",  # 12: blank
    )

    result = run_check(data, fmt=FileFormat.SCHOOLSOFT_GUARDIANS, students=STUDENTS)

    issues = issues_by_line(result)
    assert issues == {
        2: ["email_invalid", "phone_invalid", "postcode_invalid"],
        3: ["guardian_student_unknown"],
        4: ["identity_bad_check_digit"],
        5: ["guardian_identity_invalid"],
        6: ["email_invalid", "phone_invalid", "postcode_invalid", "duplicate_exact"],
        8: ["guardians_too_many"],
        10: ["guardian_conflict"],
        11: ["given_name_missing"],
    }
    columns = {(i["line"], i["column"]) for i in result.issues.to_pylist()}
    assert {(2, "guardian1_email"), (2, "guardian1_phone"), (2, "guardian1_postcode")} <= columns
    messages = {i["code"]: i["message_en"] for i in result.issues.to_pylist()}
    assert "not active in the unit" in messages["guardian_student_unknown"]
    assert "two guardians" in messages["guardians_too_many"]
    assert (result.counts.valid, result.counts.invalid, result.counts.empty) == (4, 5, 1)
    found = guardians_of(result)
    # The bad email, phone and postcode were dropped; the guardian stands.
    karin, olof = found[a]
    assert (karin["name"], karin["email"], karin["phone"], karin["postcode"]) == (
        "Karin Berg", None, None, None,
    )  # fmt: skip
    assert (karin["city"], olof["name"], olof["position"]) == ("Umeå", "Olof Berg", 2)
    # The invalid identity number is dropped, the guardian imported without it.
    assert [(g["name"], g["identity_number"]) for g in found[b]] == [("Ola Berg", None)]
    assert [g["email"] for g in found[c]] == ["eva@example.org"]
    assert unknown not in found
    assert d not in found


def test_placing_follows_the_file_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check, "CHUNK_ROWS", 2)
    a, b = STUDENTS[:2]
    data = guardian_file(
        row(a, GUARDIANS[0], "Ett", "A"),
        row(b, GUARDIANS[1], "Ett", "B"),
        row(b, GUARDIANS[2], "Två", "B"),
        row(a, GUARDIANS[3], "Två", "A"),
        row(a, GUARDIANS[4], "Tre", "A"),
    )

    result = run_check(data, fmt=FileFormat.SCHOOLSOFT_GUARDIANS, students=STUDENTS)

    found = guardians_of(result)
    assert [(g["position"], g["name"]) for g in found[a]] == [(1, "Ett A"), (2, "Två A")]
    assert [(g["position"], g["name"]) for g in found[b]] == [(1, "Ett B"), (2, "Två B")]
    assert issues_by_line(result) == {6: ["guardians_too_many"]}


def test_the_student_export_and_the_guardian_export_are_not_taken_for_each_other() -> None:
    students = ("socialnumber;fname;lname;year;class\r\n"
                f"{STUDENTS[0]};Alva;Berg;7;7A\r\n").encode()  # fmt: skip
    with pytest.raises(FileError) as raised:
        run_check(students, fmt=FileFormat.SCHOOLSOFT_GUARDIANS, students=STUDENTS)
    assert raised.value.code == "file_wrong_format"
    assert "SchoolSoft student export" in raised.value.message

    guardians = guardian_file(row(STUDENTS[0], GUARDIANS[0], "Karin", "Berg"))
    with pytest.raises(FileError) as raised:
        run_check(guardians, fmt=FileFormat.SCHOOLSOFT)
    assert raised.value.code == "file_wrong_format"
    assert FORMATS[FileFormat.SCHOOLSOFT_GUARDIANS].label.en in raised.value.message


def test_archive_missing_is_refused_for_a_guardian_file() -> None:
    guardians = FORMATS[FileFormat.SCHOOLSOFT_GUARDIANS]
    reader: Any = None  # the refusal does not read the file

    refused = guardians.refuses(reader, archive_missing=True)

    assert refused is not None
    assert "archive missing" in refused.message
    assert guardians.refuses(reader, archive_missing=False) is None


def test_a_protected_students_guardian_is_read_without_contact_data() -> None:
    open_student, hidden = STUDENTS[:2]
    secret = "hemlig@example.org;070-999 88 77;;;Hemligvägen 7;54321;Gömstaby"
    data = guardian_file(
        row(open_student, GUARDIANS[0], "Karin", "Berg", "karin@example.org;;;;;;"),
        row(hidden, GUARDIANS[1], "Eva", "Ek", secret),
        # Invalid contact data of theirs is no warning either: no issue holds it.
        row(hidden, GUARDIANS[2], "Olof", "Ek", "inte-en-adress;12;;;Hemligvägen 7;1;Ort"),
        # A third guardian is not imported, nor counted as a protected row imported.
        row(hidden, GUARDIANS[3], "Tredje", "Ek", secret),
    )

    result = run_check(
        data, fmt=FileFormat.SCHOOLSOFT_GUARDIANS, students=STUDENTS, protected_students=[hidden]
    )

    assert (result.counts.valid, result.counts.invalid, result.counts.warnings) == (3, 1, 0)
    assert result.counts.protected_identities == 2
    found = guardians_of(result)
    contact = ("email", "phone", "phone_2", "phone_3", "street", "postcode", "city")
    assert [(g["name"], g["identity_number"]) for g in found[hidden]] == [
        ("Eva Ek", GUARDIANS[1]), ("Olof Ek", GUARDIANS[2]),
    ]  # fmt: skip
    assert {g[c] for g in found[hidden] for c in contact} == {None}
    assert found[open_student][0]["email"] == "karin@example.org"
    written = str(result.valid.to_pylist()) + str(result.issues.to_pylist())
    assert "Hemligvägen" not in written
    assert "hemlig@" not in written
