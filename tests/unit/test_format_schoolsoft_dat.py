"""SchoolSoft's .dat export (IST format): read as SchoolSoft writes it, the grade from the class."""

from __future__ import annotations

import pytest

from rosterflow.events import FileFormat
from services.validator.errors import FileError
from tests.support.checks import NUMBERS, issues_by_line, run_check, valid_identities

DAT_HEADER = ["Personnummer", "Efternamn", "Förnamn", "Klass", "Adress", "Postnr", "Ort", "Mobil"]


def dat(*rows: list[str], delimiter: str = "\t", title: bool = True) -> bytes:
    """A .dat file as SchoolSoft writes it: Windows-1252, CRLF, unquoted, a title above."""
    lines = ["Elevlista Ekbackens skola", ""] if title else []
    lines += [delimiter.join(DAT_HEADER), *(delimiter.join(row) for row in rows)]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def _wrong_check_digit(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_a_dat_export_is_read_below_its_title_with_the_grade_from_the_class(
    delimiter: str,
) -> None:
    data = dat(
        [NUMBERS[0], "Åberg", "Märta", "7A", "Storgatan 1", "12345", "Umeå", "070-123 45 67"],
        [NUMBERS[1], "Öst", "Bo", "F-klass", "", "", "", ""],
        [NUMBERS[2], "Ek", "Siv", "Resursgruppen", "", "", "", ""],
        delimiter=delimiter,
    )

    result = run_check(data, fmt=FileFormat.SCHOOLSOFT_DAT)

    assert result.detected.header_line == 3
    assert result.detected.encoding == "cp1252"
    assert result.detected.delimiter == delimiter
    assert "grade" not in result.detected.columns
    assert valid_identities(result) == NUMBERS[:3]
    rows = result.valid.select(["family_name", "grade_year", "class_name", "city", "postcode"])
    assert rows.to_pylist()[0] == {
        "family_name": "Åberg", "grade_year": 7, "class_name": "7A", "city": "Umeå",
        "postcode": "123 45",
    }  # fmt: skip
    # No number to read a grade from: imported without one, with a warning.
    assert [r["grade_year"] for r in rows.to_pylist()[1:]] == [None, None]
    assert issues_by_line(result) == {5: ["grade_missing"], 6: ["grade_missing"]}


def test_an_invalid_dat_export_hits_every_row_rule() -> None:
    data = dat(
        [_wrong_check_digit(NUMBERS[4]), "Berg", "Alva", "7A", "", "", "", ""],
        [NUMBERS[0], "", "Bo", "7A", "", "", "", ""],
        [NUMBERS[1], "Ek", "", "7A", "", "1234", "", "abc"],
        ["", "Lind", "Siv", "7A", "", "", "", ""],
        [NUMBERS[2], "Nord", "Per", "7A"],
        [NUMBERS[3], "Holm", "Eva", "7A", "", "", "", ""],
        [NUMBERS[3], "Holm", "Eva", "8B", "", "", "", ""],
    )

    result = run_check(data, fmt=FileFormat.SCHOOLSOFT_DAT)

    by_line = issues_by_line(result)
    assert by_line[4] == ["identity_bad_check_digit"]
    assert by_line[5] == ["family_name_missing"]
    assert by_line[6] == ["given_name_missing", "phone_invalid", "postcode_invalid"]
    assert by_line[7] == ["identity_missing"]
    assert by_line[8] == ["row_column_count"]
    assert by_line[9] == ["duplicate_conflict"]
    assert by_line[10] == ["duplicate_conflict"]
    assert result.counts.valid == 0


def test_a_dat_file_without_the_ist_columns_names_what_is_missing() -> None:
    data = ("Namn;Klass\r\nAlva Berg;7A\r\n").encode("cp1252")
    with pytest.raises(FileError) as raised:
        run_check(data, fmt=FileFormat.SCHOOLSOFT_DAT)
    assert raised.value.code in {"file_missing_column", "file_no_header"}
