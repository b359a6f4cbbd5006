from __future__ import annotations

from collections.abc import Callable
from datetime import date
from uuid import UUID

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from rosterflow.events import FileFormat, ImportOptions, ImportRequest
from rosterflow.testing import sample_roster, school_age_numbers
from services.validator.check import CheckResult, Stopped, check_file
from services.validator.reading import FileError

TODAY = date(2026, 3, 15)
NUMBERS = school_age_numbers()
HEADER = "Personnummer;Förnamn;Efternamn;Årskurs;Klass"


def request(*, upper_secondary: bool = False) -> ImportRequest:
    return ImportRequest(
        organisation_id=UUID(int=1),
        unit_id=UUID(int=2),
        school_year="2025/2026",
        format=FileFormat.ROSTERFLOW_CSV,
        options=ImportOptions(treat_as_upper_secondary=upper_secondary),
    )


def check(
    data: bytes,
    *,
    upper_secondary: bool = False,
    max_rows: int = 1000,
    stop: Callable[[], bool] = lambda: False,
) -> CheckResult:
    return check_file(
        lambda: pa.BufferReader(data),
        request(upper_secondary=upper_secondary),
        today=TODAY,
        max_rows=max_rows,
        stop=stop,
    )


def csv(*rows: str, header: str = HEADER) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode("cp1252")


def issues_by_line(result: CheckResult) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for issue in result.issues.to_pylist():
        found.setdefault(issue["line"], []).append(issue["code"])
    return found


def valid_identities(result: CheckResult) -> list[str]:
    return [str(v) for v in result.valid.column("identity_number").to_pylist()]


# --- a realistic roster -------------------------------------------------------


def test_sample_roster_in_windows_1252_is_counted_and_every_broken_row_reported() -> None:
    roster = sample_roster(30, NUMBERS, invalid=6)

    result = check(roster.to_csv().encode("cp1252"))

    assert result.detected.encoding == "cp1252"
    assert result.detected.delimiter == ";"
    assert result.detected.columns["given_name"] == "Förnamn"
    assert (result.counts.rows, result.counts.valid, result.counts.invalid) == (36, 30, 6)
    assert (result.counts.empty, result.counts.warnings) == (0, 0)
    found = issues_by_line(result)
    assert set(found) == set(roster.invalid_lines)
    for line, code in roster.invalid_lines.items():
        assert found[line] == [code], f"line {line}"
    assert sorted(valid_identities(result)) == sorted(roster.valid_identities)


def test_valid_rows_keep_swedish_letters_and_file_line_numbers() -> None:
    result = check(csv(f"{NUMBERS[0]};Märta;Åberg;3;3A", f"{NUMBERS[1]};Örjan;Sjögren;4;4B"))

    rows = result.valid.select(["line", "given_name", "family_name", "class_name"]).to_pylist()
    assert rows == [
        {"line": 2, "given_name": "Märta", "family_name": "Åberg", "class_name": "3A"},
        {"line": 3, "given_name": "Örjan", "family_name": "Sjögren", "class_name": "4B"},
    ]


def test_empty_rows_are_counted_but_are_not_errors() -> None:
    result = check(csv(f"{NUMBERS[0]};Alva;Andersson;1;1A", ";;;;", f"{NUMBERS[1]};Bo;Berg;2;2A"))

    assert (result.counts.rows, result.counts.valid, result.counts.empty) == (3, 2, 1)
    assert result.counts.invalid == 0


# --- duplicates -----------------------------------------------------------------


def test_same_number_with_different_names_makes_both_rows_invalid() -> None:
    number = NUMBERS[0]
    result = check(
        csv(
            f"{number};Alva;Andersson;1;1A",
            f"{NUMBERS[1]};Bo;Berg;1;1A",
            f"{number[2:8]}-{number[8:]};Elsa;Andersson;1;1A",
        )
    )

    assert issues_by_line(result) == {2: ["duplicate_conflict"], 4: ["duplicate_conflict"]}
    assert valid_identities(result) == [NUMBERS[1]]
    assert (result.counts.valid, result.counts.invalid) == (1, 2)
    # Neither row is imported, but the patient is in the file: never archive them.
    assert number in result.file_identities()


def test_exact_duplicate_row_is_imported_once_with_a_warning() -> None:
    number = NUMBERS[0]
    result = check(
        csv(
            f"{number};Alva;Andersson;1;1A",
            f"{number[2:8]}-{number[8:]};Alva;Andersson;1;1A",
        )
    )

    assert valid_identities(result) == [number]
    assert issues_by_line(result) == {3: ["duplicate_exact"]}
    assert result.issues.column("severity").to_pylist() == ["warning"]
    assert (result.counts.valid, result.counts.invalid, result.counts.warnings) == (1, 0, 1)


# --- identities for archive-missing -------------------------------------------


def test_file_identities_include_rows_invalid_for_other_reasons() -> None:
    result = check(
        csv(
            f"{NUMBERS[0]};Alva;Andersson;1;1A",
            f"{NUMBERS[1]};;Berg;2;2A",  # a typo: the given name is missing
            f"{NUMBERS[2]};Ce;;3;3A",
            f"{NUMBERS[3][:-1]}{(int(NUMBERS[3][-1]) + 1) % 10};Dan;Dahl;4;4A",
        )
    )

    assert valid_identities(result) == [NUMBERS[0]]
    assert sorted(result.file_identities()) == sorted(NUMBERS[:3])
    # A number that could not be read is nobody's: it must not match a patient.
    assert NUMBERS[3] not in result.file_identities()


def test_file_identities_include_a_row_with_the_wrong_number_of_fields() -> None:
    result = check(csv(f"{NUMBERS[0]};Alva;Andersson;1;1A", f"{NUMBERS[1]};Anna;Maria;Berg;2;2A"))

    assert NUMBERS[1] in result.file_identities()


# --- line numbers and counts of rows that could not be read ---------------------


def test_row_with_the_wrong_number_of_fields_is_an_error_in_the_report() -> None:
    result = check(csv(f"{NUMBERS[0]};Alva;Andersson;1;1A", f"{NUMBERS[1]};Bo;Berg;2;2A;x"))

    assert result.issues.column("code").to_pylist() == ["row_column_count"]
    assert result.issues.column("severity").to_pylist() == ["error"]
    assert (result.counts.rows, result.counts.valid, result.counts.invalid) == (2, 1, 1)


def test_every_row_with_the_wrong_number_of_fields_is_counted() -> None:
    result = check(
        csv(
            f"{NUMBERS[0]};Alva;Andersson;1;1A",
            f"{NUMBERS[1]};Bo;Berg;2;2A;x",
            f"{NUMBERS[2]};Ce;Carlsson",
        )
    )

    assert (result.counts.rows, result.counts.valid, result.counts.invalid) == (3, 1, 2)


@pytest.mark.parametrize(
    "before",
    [
        pytest.param(f"{NUMBERS[1]};Bo;Berg;2;2A;x", id="misshapen-row"),
        pytest.param("", id="blank-line"),
        pytest.param(f'{NUMBERS[1]};Bo;"Berg\r\nSvensson";2;2A', id="quoted-line-break"),
    ],
)
def test_line_numbers_are_those_the_administrators_editor_shows(before: str) -> None:
    result = check(csv(f"{NUMBERS[0]};Alva;Andersson;1;1A", before, f"{NUMBERS[2]};;Carlsson;3;3A"))

    given_missing = result.issues.filter(pc.equal(result.issues["code"], "given_name_missing"))
    expected_line = 4 + before.count("\n")
    assert given_missing.column("line").to_pylist() == [expected_line]


# --- limits and cancellation ------------------------------------------------------


def test_more_rows_than_the_limit_rejects_the_file() -> None:
    rows = [f"{n};Alva;Andersson;1;1A" for n in NUMBERS[:3]]

    with pytest.raises(FileError) as raised:
        check(csv(*rows), max_rows=2)

    assert raised.value.code == "file_too_many_rows"
    assert "2" in raised.value.message


def test_exactly_the_row_limit_is_accepted() -> None:
    rows = [f"{n};Alva;Andersson;1;1A" for n in NUMBERS[:3]]

    assert check(csv(*rows), max_rows=3).counts.valid == 3


def test_stop_request_ends_the_check() -> None:
    with pytest.raises(Stopped):
        check(csv(f"{NUMBERS[0]};Alva;Andersson;1;1A"), stop=lambda: True)


def test_file_level_error_comes_from_the_header() -> None:
    with pytest.raises(FileError) as raised:
        check(csv(f"{NUMBERS[0]};Alva", header="Personnummer;Förnamn"))

    assert raised.value.code == "file_missing_column"


# --- messages ------------------------------------------------------------------


def test_every_issue_has_a_message_in_swedish_and_english() -> None:
    number = NUMBERS[0]
    result = check(
        csv(
            f"{number};Alva;Andersson;1;1A",
            f"{number};Alva;Andersson;1;1A",  # exact duplicate
            f"{NUMBERS[1]};;Berg;2;2A",  # given name missing
            f'{NUMBERS[2]};=HYPERLINK("x");Carlsson;3;3A',  # formula-like
            "201801/012392;Dan;Dahl;4;4A",  # wrong format
            "20150312TF10;Eva;Ek;5;5A",  # temporary number
            f"{NUMBERS[3]};Fia;Falk;6;6A;extra",  # wrong number of fields
        )
    )

    codes = set(result.issues.column("code").to_pylist())
    assert codes == {
        "duplicate_exact",
        "given_name_missing",
        "cell_formula_like",
        "identity_format",
        "identity_temporary",
        "row_column_count",
    }
    for issue in result.issues.to_pylist():
        assert issue["message_sv"], issue["code"]
        assert issue["message_en"], issue["code"]
        assert issue["message_sv"] != issue["message_en"], issue["code"]
    messages = result.issues.filter(pc.equal(result.issues["code"], "given_name_missing"))
    assert "Förnamn" in messages.column("message_sv")[0].as_py()
    assert "given name" in messages.column("message_en")[0].as_py()


# --- school placement --------------------------------------------------------------


def placements(result: CheckResult) -> list[tuple[str | None, int | None]]:
    return list(
        zip(
            result.valid.column("school_form").to_pylist(),
            result.valid.column("grade_year").to_pylist(),
            strict=True,
        )
    )


def test_missing_grade_is_read_from_a_class_name_like_7a() -> None:
    result = check(csv(f"{NUMBERS[0]};Alva;Andersson;;7A", f"{NUMBERS[1]};Bo;Berg;F;FA"))

    assert placements(result) == [("compulsory", 7), ("preschool_class", 0)]


def test_grades_are_compulsory_school_years_by_default() -> None:
    result = check(csv(f"{NUMBERS[0]};Alva;Andersson;2;2A"))

    assert placements(result) == [("compulsory", 2)]


def test_treat_as_upper_secondary_makes_grade_2_the_second_upper_secondary_year() -> None:
    result = check(
        csv(f"{NUMBERS[0]};Alva;Andersson;2;NA24b", f"{NUMBERS[1]};Bo;Berg;;3C"),
        upper_secondary=True,
    )

    assert placements(result) == [("upper_secondary", 2), ("upper_secondary", 3)]
