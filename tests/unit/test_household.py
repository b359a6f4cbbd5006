"""A student's contact data in full, protected identities and guardians, in whole files."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from rosterflow.events import FileFormat
from rosterflow.report import CONTACT_COLUMNS, GUARDIAN_COLUMNS
from services.validator.protected import Marks
from tests.support.checks import NUMBERS, csv, issues_by_line, run_check, valid_identities
from tests.support.workbooks import Cell, xlsx

CONTACT_HEADER = (
    "Personnummer;Förnamn;Efternamn;E-post;Telefon;Telefon 2;Telefon 3;Gatuadress;Postnummer;"
    "Postort"
)
CONTACT = "alva@skolan.se;070-123 45 67;08-123 456;+46 31 123 45;Storgatan 1;12345;Umeå"
GUARDIAN_HEADER = ";".join(
    f"Vårdnadshavare {n} {field}"
    for n in (1, 2)
    for field in (
        "namn", "personnummer", "e-post", "telefon", "telefon 2", "telefon 3", "gatuadress",
        "postnummer", "postort",
    )
)  # fmt: skip
GUARDIAN_1 = "Karin Berg;19800102-2386;karin@hem.se;070-111 22 33;;;Storgatan 1;123 45;Umeå"
GUARDIAN_2 = "Olof Berg;;olof@hem.se;0701112234;;;Lillgatan 2;SE-54321;Luleå"


def test_three_phone_numbers_street_postcode_city_and_email_are_kept() -> None:
    result = run_check(csv(f"{NUMBERS[0]};Alva;Berg;{CONTACT}", header=CONTACT_HEADER))

    assert result.valid.select(list(CONTACT_COLUMNS)).to_pylist() == [
        {
            "email": "alva@skolan.se",
            "phone": "070-123 45 67",
            "phone_2": "08-123 456",
            "phone_3": "+46 31 123 45",
            "street": "Storgatan 1",
            "postcode": "123 45",
            "city": "Umeå",
        }
    ]
    assert result.counts.warnings == 0


def test_an_invalid_second_or_third_phone_number_is_dropped_with_a_warning() -> None:
    header = "Personnummer;Förnamn;Efternamn;Telefon;Telefon 2;Telefon 3"

    result = run_check(csv(f"{NUMBERS[0]};Alva;Berg;070-123 45 67;12;0701234567", header=header))

    assert valid_identities(result) == [NUMBERS[0]]
    assert result.valid.select(["phone", "phone_2", "phone_3"]).to_pylist() == [
        {"phone": "070-123 45 67", "phone_2": None, "phone_3": "0701234567"}
    ]
    assert issues_by_line(result) == {2: ["phone_invalid"]}
    assert result.issues.column("column").to_pylist() == ["phone_2"]


@pytest.mark.parametrize(
    "column", ["Skyddad identitet", "Sekretessmarkering", "Skyddad folkbokföring"]
)
@pytest.mark.parametrize("mark", ["ja", "J", "x", "1", "true", "Yes"])
def test_a_protected_identity_is_imported_flagged_without_contact_data(
    column: str, mark: str
) -> None:
    header = f"{CONTACT_HEADER};{column}"
    rows = (
        f"{NUMBERS[0]};Alva;Berg;{CONTACT};{mark}",
        f"{NUMBERS[1]};Bo;Berg;{CONTACT};nej",
        f"{NUMBERS[2]};Cleo;Berg;{CONTACT};",
    )

    result = run_check(csv(*rows, header=header))

    assert result.valid.column("protected_identity").to_pylist() == [True, False, False]
    protected = result.valid.slice(0, 1).select(list(CONTACT_COLUMNS)).to_pylist()[0]
    assert set(protected.values()) == {None}
    assert result.valid.slice(1, 1).column("street").to_pylist() == ["Storgatan 1"]
    assert result.counts.protected_identities == 1
    assert result.counts.warnings == 0


def test_a_protected_students_invalid_contact_data_is_in_no_issue() -> None:
    """Dropped before any rule: not even a warning shows a protected student's data."""
    header = "Personnummer;Förnamn;Efternamn;E-post;Telefon;Postnummer;Skyddad identitet"
    row = f"{NUMBERS[0]};Alva;Berg;alva(at)hemligt;=HYPERLINK(1);99;ja"

    result = run_check(csv(row, header=header))

    assert valid_identities(result) == [NUMBERS[0]]
    assert result.issues.num_rows == 0
    assert "hemligt" not in str(result.valid.to_pylist())


def test_a_mark_that_is_neither_yes_nor_no_protects_with_a_warning() -> None:
    header = f"{CONTACT_HEADER};Sekretessmarkering"

    result = run_check(csv(f"{NUMBERS[0]};Alva;Berg;{CONTACT};kanske", header=header))

    assert result.valid.column("protected_identity").to_pylist() == [True]
    assert result.valid.column("street").to_pylist() == [None]
    assert issues_by_line(result) == {2: ["protected_identity_unclear"]}
    assert result.counts.protected_identities == 1


def test_an_invalid_protected_row_is_not_counted_as_imported_protected() -> None:
    header = "Personnummer;Förnamn;Efternamn;Skyddad identitet"

    result = run_check(csv(f"{NUMBERS[0]};;Berg;ja", f"{NUMBERS[1]};Bo;Berg;ja", header=header))

    assert result.counts.protected_identities == 1
    assert result.counts.invalid == 1


def test_marks_read_column_at_a_time() -> None:
    marks = Marks(pa.array(["ja", "NEJ", None, "x", "0", "?"]))
    assert marks.protected.to_pylist() == [True, False, False, True, False, True]
    assert marks.unclear.to_pylist() == [False, False, False, False, False, True]


def test_two_guardians_are_read_from_the_template_columns() -> None:
    header = f"Personnummer;Förnamn;Efternamn;{GUARDIAN_HEADER}"

    result = run_check(csv(f"{NUMBERS[0]};Alva;Berg;{GUARDIAN_1};{GUARDIAN_2}", header=header))

    row = result.valid.select(list(GUARDIAN_COLUMNS)).to_pylist()[0]
    assert row == {
        "guardian1_name": "Karin Berg",
        "guardian1_identity_number": "198001022386",
        "guardian1_email": "karin@hem.se",
        "guardian1_phone": "070-111 22 33",
        "guardian1_phone_2": None,
        "guardian1_phone_3": None,
        "guardian1_street": "Storgatan 1",
        "guardian1_postcode": "123 45",
        "guardian1_city": "Umeå",
        "guardian2_name": "Olof Berg",
        "guardian2_identity_number": None,
        "guardian2_email": "olof@hem.se",
        "guardian2_phone": "0701112234",
        "guardian2_phone_2": None,
        "guardian2_phone_3": None,
        "guardian2_street": "Lillgatan 2",
        "guardian2_postcode": "543 21",
        "guardian2_city": "Luleå",
    }
    assert result.counts.warnings == 0


def test_a_guardians_invalid_values_are_dropped_with_warnings_and_the_row_imports() -> None:
    header = "Personnummer;Förnamn;Efternamn;VH1 Namn;VH1 Personnummer;VH1 E-post;VH2 Telefon"
    row = f"{NUMBERS[0]};Alva;Berg;Karin Berg;19800101-0008;karin(at)hem;12"

    result = run_check(csv(row, header=header))

    assert valid_identities(result) == [NUMBERS[0]]
    guardians = result.valid.select(
        ["guardian1_name", "guardian1_identity_number", "guardian1_email", "guardian2_phone"]
    )
    assert guardians.to_pylist() == [
        {
            "guardian1_name": "Karin Berg",
            "guardian1_identity_number": None,
            "guardian1_email": None,
            "guardian2_phone": None,
        }
    ]
    assert sorted(issues_by_line(result)[2]) == [
        "email_invalid", "guardian_identity_invalid", "phone_invalid",
    ]  # fmt: skip
    assert set(result.issues.column("severity").to_pylist()) == {"warning"}


def test_a_protected_students_guardians_keep_their_names_but_no_contact_data() -> None:
    header = f"Personnummer;Förnamn;Efternamn;Skyddad folkbokföring;{GUARDIAN_HEADER}"

    result = run_check(csv(f"{NUMBERS[0]};Alva;Berg;x;{GUARDIAN_1};{GUARDIAN_2}", header=header))

    row = result.valid.select(list(GUARDIAN_COLUMNS)).to_pylist()[0]
    assert (row["guardian1_name"], row["guardian2_name"]) == ("Karin Berg", "Olof Berg")
    assert row["guardian1_identity_number"] == "198001022386"
    kept = {"guardian1_name", "guardian2_name", "guardian1_identity_number"}
    assert {k: v for k, v in row.items() if k not in kept} == dict.fromkeys(set(row) - kept)
    assert pc.all(result.valid.column("protected_identity")).as_py()


def test_the_workbook_template_reads_the_same_columns() -> None:
    header = ["Personnummer", "Förnamn", "Efternamn", "Telefon 3", "Skyddad identitet",
              "Vårdnadshavare 2 namn", "Vårdnadshavare 2 e-post"]  # fmt: skip
    rows: list[list[Cell]] = [
        [NUMBERS[0], "Alva", "Berg", "0701234567", 1, "Olof Berg", "olof@hem.se"],
        [NUMBERS[1], "Bo", "Berg", "0701234568", None, "Eva Berg", "eva@hem.se"],
    ]

    result = run_check(xlsx(header, *rows), fmt=FileFormat.ROSTERFLOW_XLSX)

    # A 1 typed as a number in Excel is a mark like "1".
    assert result.valid.column("protected_identity").to_pylist() == [True, False]
    assert result.valid.column("phone_3").to_pylist() == [None, "0701234568"]
    assert result.valid.column("guardian2_email").to_pylist() == [None, "eva@hem.se"]
    assert result.valid.column("guardian2_name").to_pylist() == ["Olof Berg", "Eva Berg"]
    assert result.counts.protected_identities == 1


def test_schoolsofts_student_export_reads_its_second_phone_and_a_protection_mark() -> None:
    header = "socialnumber;fname;lname;mobile;phone;address;Sekretessmarkering"
    rows = (
        f"{NUMBERS[0]};Alva;Berg;0701234567;08-123456;Storgatan 1;",
        f"{NUMBERS[1]};Bo;Berg;0701234568;08-654321;Lillgatan 2;J",
    )

    result = run_check(csv(*rows, header=header), fmt=FileFormat.SCHOOLSOFT)

    shown = result.valid.select(["phone", "phone_2", "street", "protected_identity"])
    assert shown.to_pylist() == [
        {"phone": "0701234567", "phone_2": "08-123456", "street": "Storgatan 1",
         "protected_identity": False},
        {"phone": None, "phone_2": None, "street": None, "protected_identity": True},
    ]  # fmt: skip
