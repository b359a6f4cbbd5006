"""The format registry and the chosen format checked against the file (CSV and XLSX)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from datetime import date

import pytest

from rosterflow.events import FileFormat
from rosterflow.testing import school_age_numbers
from services.ingest.logic import SUPPORTED_FORMATS
from services.validator.errors import FileError
from services.validator.formats import FORMATS
from services.validator.workbook import cell_text
from tests.support.checks import Checked, run_check
from tests.support.workbooks import ROSTERFLOW_HEADER, Cell, xlsx

NUMBERS = school_age_numbers()
SCHOOLSOFT_HEADER = ["socialnumber", "fname", "lname", "year", "class", "email", "mobile"]


def text(*rows: Sequence[str], delimiter: str = ";") -> bytes:
    return ("\r\n".join(delimiter.join(row) for row in rows) + "\r\n").encode()


def rejected(data: bytes, fmt: FileFormat) -> FileError:
    with pytest.raises(FileError) as raised:
        run_check(data, fmt=fmt)
    return raised.value


def identities(result: Checked) -> list[str]:
    return [str(v) for v in result.valid.column("identity_number").to_pylist()]


# --- the registry ---------------------------------------------------------------


def test_every_format_the_upload_offers_has_a_reader_and_ingest_accepts_it() -> None:
    assert set(FORMATS) == set(FileFormat)
    assert set(SUPPORTED_FORMATS) == set(FileFormat)


# --- rosterflow XLSX --------------------------------------------------------------


def test_rosterflow_xlsx_reads_the_first_sheet_with_spreadsheet_row_numbers() -> None:
    data = xlsx(
        ROSTERFLOW_HEADER,
        [NUMBERS[0], "Märta", "Åberg", 3, "3A"],
        [],
        [NUMBERS[1], "", "Berg", "4", "4B"],
        first_row=3,
        second_sheet=True,
    )

    result = run_check(data, fmt=FileFormat.ROSTERFLOW_XLSX)

    assert identities(result) == [NUMBERS[0]]
    assert result.valid.select(["line", "given_name", "school_form", "grade_year"]).to_pylist() == [
        {"line": 4, "given_name": "Märta", "school_form": "compulsory", "grade_year": 3}
    ]
    assert result.issues.select(["line", "code"]).to_pylist() == [
        {"line": 6, "code": "given_name_missing"}
    ]
    assert (result.counts.rows, result.counts.empty) == (3, 1)
    assert result.detected.format is FileFormat.ROSTERFLOW_XLSX
    assert result.detected.columns["identity"] == "Personnummer"


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        pytest.param(101012392, "101012392.0", id="leading-zero-lost"),
        pytest.param(20180101239, "20180101239.0", id="eleven-digits"),
        pytest.param(1801012392.5, "1801012392.5", id="a-fraction"),
        pytest.param(2.01801e16, "2.01801e+16", id="an-exponent"),
        pytest.param("2,01801E+11", "2,01801E+11", id="scientific-notation-as-text"),
        pytest.param("201801012392.0", "201801012392.0", id="trailing-zero-as-text"),
    ],
)
def test_identity_numbers_excel_turned_into_numbers_are_reported_as_such(
    cell: Cell, shown: str
) -> None:
    data = xlsx(ROSTERFLOW_HEADER, [cell, "Alva", "Berg", 1, "1A"])

    result = run_check(data, fmt=FileFormat.ROSTERFLOW_XLSX)

    assert result.issues.select(["line", "code", "value"]).to_pylist() == [
        {"line": 2, "code": "identity_excel_mangled", "value": shown}
    ]
    assert result.counts.valid == 0


@pytest.mark.parametrize("digits", [12, 10])
def test_a_whole_number_of_ten_or_twelve_digits_is_an_exact_identity_number(digits: int) -> None:
    number = int(NUMBERS[0][-digits:])
    data = xlsx(ROSTERFLOW_HEADER, [number, "Alva", "Berg", 1, "1A"])

    result = run_check(data, fmt=FileFormat.ROSTERFLOW_XLSX)

    assert result.issues.num_rows == 0
    assert identities(result) == [NUMBERS[0]]


def test_numbers_in_other_columns_read_as_written() -> None:
    header = [*ROSTERFLOW_HEADER, "Postnummer", "Telefon"]
    data = xlsx(header, [NUMBERS[0], "Alva", "Berg", 7, 7, 12345, "070-123 45 67"])

    result = run_check(data, fmt=FileFormat.ROSTERFLOW_XLSX)

    row = result.valid.select(["grade_year", "class_name", "postcode", "phone"]).to_pylist()
    assert row == [
        {"grade_year": 7, "class_name": "7", "postcode": "123 45", "phone": "070-123 45 67"}
    ]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (201801012392, "201801012392"),
        (20180101239, "20180101239.0"),
        (7.0, "7"),
        (7.5, "7.5"),
        (True, "TRUE"),
        (date(2018, 1, 1), "2018-01-01"),
        ("7A", "7A"),
    ],
)
def test_cell_text(value: int | float | bool | date | str, shown: str) -> None:
    assert cell_text(value, identity=isinstance(value, int) and value > 10**6) == shown


def test_a_workbook_with_a_header_only_has_no_students() -> None:
    assert rejected(xlsx(ROSTERFLOW_HEADER), FileFormat.ROSTERFLOW_XLSX).code == "file_no_rows"


def test_an_empty_workbook_is_empty() -> None:
    assert rejected(xlsx(), FileFormat.ROSTERFLOW_XLSX).code == "file_empty"


def test_a_damaged_workbook_is_unreadable() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<not a workbook")
    error = rejected(buffer.getvalue(), FileFormat.ROSTERFLOW_XLSX)

    assert error.code == "file_unreadable"
    assert "xlsx" in error.message


# --- SchoolSoft -------------------------------------------------------------------


@pytest.mark.parametrize("container", ["csv", "xlsx"])
def test_schoolsoft_student_export_is_read_as_csv_or_xlsx(container: str) -> None:
    rows = [
        SCHOOLSOFT_HEADER,
        [NUMBERS[0], "Alva", "Berg", "7", "7A", "alva@skolan.se", "070-1234567"],
        [NUMBERS[1], "Bo", "Ek", "8", "8B", "", ""],
    ]
    data = text(*rows) if container == "csv" else xlsx(*rows)

    result = run_check(data, fmt=FileFormat.SCHOOLSOFT)

    assert identities(result) == NUMBERS[:2]
    assert result.valid.column("email").to_pylist() == ["alva@skolan.se", None]
    assert result.valid.column("phone").to_pylist() == ["070-1234567", None]
    assert result.detected.columns["identity"] == "socialnumber"
    assert result.detected.format is FileFormat.SCHOOLSOFT


# --- the wrong format chosen --------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "chosen", "looks_like"),
    [
        pytest.param(
            text(SCHOOLSOFT_HEADER, [NUMBERS[0], "Alva", "Berg", "7", "7A", "", ""]),
            FileFormat.ROSTERFLOW_CSV,
            "SchoolSoft student export",
            id="schoolsoft-as-rosterflow-csv",
        ),
        pytest.param(
            text(ROSTERFLOW_HEADER, [NUMBERS[0], "Alva", "Berg", "7", "7A"]),
            FileFormat.SCHOOLSOFT,
            "rosterflow CSV",
            id="rosterflow-csv-as-schoolsoft",
        ),
        pytest.param(
            xlsx(ROSTERFLOW_HEADER, [NUMBERS[0], "Alva", "Berg", 7, "7A"]),
            FileFormat.ROSTERFLOW_CSV,
            "Excel workbook (XLSX)",
            id="xlsx-as-csv",
        ),
        pytest.param(
            text(ROSTERFLOW_HEADER, [NUMBERS[0], "Alva", "Berg", "7", "7A"]),
            FileFormat.ROSTERFLOW_XLSX,
            "text (CSV) file",
            id="csv-as-xlsx",
        ),
        pytest.param(
            xlsx(SCHOOLSOFT_HEADER, [NUMBERS[0], "Alva", "Berg", 7, "7A", "", ""]),
            FileFormat.ROSTERFLOW_XLSX,
            "SchoolSoft student export",
            id="schoolsoft-xlsx-as-rosterflow-xlsx",
        ),
        pytest.param(
            text(["student_socialnumber", "socialnumber", "fname", "lname"], [NUMBERS[0]] * 4),
            FileFormat.SCHOOLSOFT,
            "SchoolSoft guardian export",
            id="schoolsoft-guardians-as-students",
        ),
        pytest.param(
            text(["sourcedId", "role", "givenName", "familyName", "identifier"], ["1"] * 5),
            FileFormat.ROSTERFLOW_CSV,
            "OneRoster's users.csv",
            id="oneroster-users",
        ),
        pytest.param(
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512,
            FileFormat.ROSTERFLOW_XLSX,
            "old Excel workbook (XLS)",
            id="xls-as-xlsx",
        ),
    ],
)
def test_a_file_in_another_format_than_chosen_is_one_clear_error(
    data: bytes, chosen: FileFormat, looks_like: str
) -> None:
    error = rejected(data, chosen)

    assert error.code == "file_wrong_format"
    assert looks_like in error.message
    assert FORMATS[chosen].label.en in error.message
    assert FORMATS[chosen].label.sv in error.message_sv


def test_an_old_xls_workbook_is_told_to_be_saved_as_xlsx() -> None:
    error = rejected(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, FileFormat.SCHOOLSOFT)

    assert ".xlsx" in error.message
    assert ".xlsx" in error.message_sv


def test_missing_columns_are_named_when_the_file_is_no_other_known_format() -> None:
    error = rejected(text(["Personnummer", "Klass"], [NUMBERS[0], "7A"]), FileFormat.SCHOOLSOFT)

    assert error.code == "file_missing_column"
    assert "identity number (socialnumber)" in error.message
    assert "förnamn (fname)" in error.message_sv
