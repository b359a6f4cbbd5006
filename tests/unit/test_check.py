from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pytest

from rosterflow.storage import ObjectStore
from rosterflow.testing import sample_roster
from services.validator import reading
from services.validator.check import Limits, Stopped, check_file
from services.validator.errors import FileError
from services.validator.report import ReportWriter
from services.validator.rows import Rules
from services.validator.source import Upload
from tests.support.checks import (
    INVALID_KEY,
    NUMBERS,
    TODAY,
    VALID_KEY,
    csv,
    issues_by_line,
    report_identities,
    request,
    run_check,
    valid_identities,
)

# --- a realistic roster -------------------------------------------------------


def test_sample_roster_in_windows_1252_is_counted_and_every_broken_row_reported() -> None:
    roster = sample_roster(30, NUMBERS, invalid=6)

    result = run_check(roster.to_csv().encode("cp1252"))

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
    result = run_check(csv(f"{NUMBERS[0]};Märta;Åberg;3;3A", f"{NUMBERS[1]};Örjan;Sjögren;4;4B"))

    rows = result.valid.select(["line", "given_name", "family_name", "class_name"]).to_pylist()
    assert rows == [
        {"line": 2, "given_name": "Märta", "family_name": "Åberg", "class_name": "3A"},
        {"line": 3, "given_name": "Örjan", "family_name": "Sjögren", "class_name": "4B"},
    ]


def test_empty_rows_are_counted_but_are_not_errors() -> None:
    result = run_check(
        csv(f"{NUMBERS[0]};Alva;Andersson;1;1A", ";;;;", "", f"{NUMBERS[1]};Bo;Berg;2;2A")
    )

    assert (result.counts.rows, result.counts.valid, result.counts.empty) == (4, 2, 2)
    assert result.counts.invalid == 0
    assert result.valid.column("line").to_pylist() == [2, 5]


# --- duplicates -----------------------------------------------------------------


def test_same_number_with_different_names_makes_both_rows_invalid() -> None:
    number = NUMBERS[0]
    result = run_check(
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
    assert number in report_identities(result)


def test_exact_duplicate_row_is_imported_once_with_a_warning() -> None:
    number = NUMBERS[0]
    result = run_check(
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


def test_report_names_the_identity_of_rows_invalid_for_other_reasons() -> None:
    result = run_check(
        csv(
            f"{NUMBERS[0]};Alva;Andersson;1;1A",
            f"{NUMBERS[1]};;Berg;2;2A",  # a typo: the given name is missing
            f"{NUMBERS[2]};Ce;;3;3A",
            f"{NUMBERS[3][:-1]}{(int(NUMBERS[3][-1]) + 1) % 10};Dan;Dahl;4;4A",
        )
    )

    assert valid_identities(result) == [NUMBERS[0]]
    assert report_identities(result) == set(NUMBERS[:3])
    # A number that could not be read is nobody's: it must not match a patient.
    assert NUMBERS[3] not in report_identities(result)


def test_report_names_the_identity_of_a_row_with_the_wrong_number_of_fields() -> None:
    result = run_check(
        csv(f"{NUMBERS[0]};Alva;Andersson;1;1A", f"{NUMBERS[1]};Anna;Maria;Berg;2;2A")
    )

    assert NUMBERS[1] in report_identities(result)


# --- line numbers and counts of rows that could not be read ---------------------


def test_row_with_the_wrong_number_of_fields_is_an_error_in_the_report() -> None:
    result = run_check(csv(f"{NUMBERS[0]};Alva;Andersson;1;1A", f"{NUMBERS[1]};Bo;Berg;2;2A;x"))

    assert result.issues.column("code").to_pylist() == ["row_column_count"]
    assert result.issues.column("severity").to_pylist() == ["error"]
    assert result.issues.column("value").to_pylist() == ["6 of 5 fields"]
    assert (result.counts.rows, result.counts.valid, result.counts.invalid) == (2, 1, 1)


def test_every_row_with_the_wrong_number_of_fields_is_counted() -> None:
    result = run_check(
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
        pytest.param("   ", id="line-of-spaces"),
        pytest.param(f'{NUMBERS[1]};Bo;"Berg\r\nSvensson";2;2A', id="quoted-line-break"),
        pytest.param(f'{NUMBERS[1]};"Bo";Berg;2;2A', id="quoted-field"),
        pytest.param(f"{NUMBERS[1]};Bo;Berg;2;2A;;", id="trailing-empty-fields"),
    ],
)
def test_line_numbers_are_those_the_administrators_editor_shows(before: str) -> None:
    result = run_check(
        csv(f"{NUMBERS[0]};Alva;Andersson;1;1A", before, f"{NUMBERS[2]};;Carlsson;3;3A")
    )

    given_missing = result.issues.filter(pc.equal(result.issues["code"], "given_name_missing"))
    expected_line = 4 + before.count("\n")
    assert given_missing.column("line").to_pylist() == [expected_line]


def test_trailing_empty_fields_of_a_row_are_read_not_rejected() -> None:
    result = run_check(csv(f"{NUMBERS[0]};Alva;Andersson;1;1A;;;", f"{NUMBERS[1]};Bo;Berg;2;2A"))

    assert valid_identities(result) == [NUMBERS[0], NUMBERS[1]]
    assert result.valid.column("line").to_pylist() == [2, 3]


# --- limits and cancellation ------------------------------------------------------


def test_more_rows_than_the_limit_rejects_the_file() -> None:
    rows = [f"{n};Alva;Andersson;1;1A" for n in NUMBERS[:3]]

    with pytest.raises(FileError) as raised:
        run_check(csv(*rows), max_rows=2)

    assert raised.value.code == "file_too_many_rows"
    assert "2" in raised.value.message
    assert "2" in raised.value.message_sv


def test_exactly_the_row_limit_is_accepted() -> None:
    rows = [f"{n};Alva;Andersson;1;1A" for n in NUMBERS[:3]]

    assert run_check(csv(*rows), max_rows=3).counts.valid == 3


def test_a_file_over_the_size_limit_is_rejected_before_it_is_read() -> None:
    def never_opened() -> pa.NativeFile:
        raise AssertionError("the file was read")

    with tempfile.TemporaryDirectory() as tmp:
        store = ObjectStore(pafs.LocalFileSystem(), tmp)
        with pytest.raises(FileError) as raised:
            check_file(
                Upload(never_opened, 50 * 1024 * 1024 + 1),
                request(),
                Rules(today=TODAY),
                limits=Limits(max_rows=1000, max_bytes=50 * 1024 * 1024),
                report=ReportWriter(store, VALID_KEY, INVALID_KEY),
                stop=lambda: False,
            )

    assert raised.value.code == "file_too_large"
    assert "52428800" in raised.value.message


def test_stop_request_ends_the_check_and_leaves_no_report(tmp_path: Path) -> None:
    with pytest.raises(Stopped):
        run_check(csv(f"{NUMBERS[0]};Alva;Andersson;1;1A"), stop=lambda: True, store_dir=tmp_path)

    assert not list(tmp_path.rglob("*.parquet*"))


def test_progress_is_heard_from_the_second_chunk_on(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [f"{NUMBERS[i]};Alva;Andersson;1;1A" for i in range(300)]
    heard: list[int] = []
    run_check(csv(*rows[:20]), progress=heard.append)
    assert heard == []  # one chunk: checked before anyone could watch

    monkeypatch.setattr(reading, "BLOCK_BYTES", 1024)  # about 30 rows a chunk
    checked = run_check(csv(*rows), progress=heard.append)
    assert checked.counts.valid == 300
    assert len(heard) >= 5
    assert heard == sorted(heard)
    assert heard[0] < 100
    assert heard[-1] == 300


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Personnummer;Förnamn", "file_missing_column"),
        ("Namn;Skostorlek", "file_no_header"),
    ],
)
def test_file_level_error_comes_from_the_header(header: str, code: str) -> None:
    with pytest.raises(FileError) as raised:
        run_check(csv(f"{NUMBERS[0]};Alva", header=header))

    assert raised.value.code == code


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(csv(), id="header-only"),
        pytest.param(csv("", ";;;;", ""), id="header-and-blank-rows"),
    ],
)
def test_a_file_without_students_is_rejected(data: bytes) -> None:
    with pytest.raises(FileError) as raised:
        run_check(data)

    assert raised.value.code == "file_no_rows"


# --- messages ------------------------------------------------------------------


def test_every_issue_has_a_message_in_swedish_and_english() -> None:
    number = NUMBERS[0]
    result = run_check(
        csv(
            f"{number};Alva;Andersson;1;1A",
            f"{number};Alva;Andersson;1;1A",  # exact duplicate
            f"{NUMBERS[1]};;Berg;2;2A",  # given name missing
            f'{NUMBERS[2]};=HYPERLINK("x");Carlsson;3;3A',  # formula-like
            "201801/012392;Dan;Dahl;4;4A",  # wrong format
            "20150312TF10;Eva;Ek;5;5A",  # temporary number
            f"{NUMBERS[3]};Fia;Falk;6;6A;extra",  # wrong number of fields
            f"{NUMBERS[4]};Gun;Gran;12;12A",  # not a grade
            f"{NUMBERS[5]};Hans;Holm;;Röd",  # grade missing
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
        "grade_invalid",
        "grade_missing",
    }
    for issue in result.issues.to_pylist():
        assert issue["message_sv"], issue["code"]
        assert issue["message_en"], issue["code"]
        assert issue["message_sv"] != issue["message_en"], issue["code"]
    messages = result.issues.filter(pc.equal(result.issues["code"], "given_name_missing"))
    assert "Förnamn" in messages.column("message_sv")[0].as_py()
    assert "given name" in messages.column("message_en")[0].as_py()
    assert result.issues.column("line").to_pylist() == sorted(
        result.issues.column("line").to_pylist()
    )
