"""Hostile and careless files through check_file: bounded work, clear errors, rows reported."""

from __future__ import annotations

import tempfile

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pytest

from rosterflow.events import FileFormat
from rosterflow.storage import ObjectStore
from services.validator import check
from services.validator.check import MAX_ROW_ISSUES, Limits, check_file
from services.validator.errors import SHOWN_CHARS, FileError
from services.validator.formats.rosterflow_csv import ALIASES
from services.validator.header import map_header
from services.validator.records import SPAN_RECORDS, RecordWalk
from services.validator.report import ReportWriter
from services.validator.rows import Rules
from services.validator.source import Upload
from tests.support.checks import (
    INVALID_KEY,
    TODAY,
    VALID_KEY,
    issues_by_line,
    request,
    run_check,
)
from tests.support.hostile import (
    HEADER,
    NUMBERS,
    csv_lines,
    inline,
    many_issues,
    nul_late,
    one_long_field,
    sheet_xlsx,
    wide_rows,
)
from tests.support.workbooks import ROSTERFLOW_HEADER, xlsx


def test_misshapen_rows_are_handed_on_in_spans_not_kept_until_a_good_row() -> None:
    data = wide_rows(2 * SPAN_RECORDS + 5)
    layout = map_header(HEADER.split(";"), ALIASES)

    walk = RecordWalk(pa.BufferReader(data), "utf-8", ";", layout)
    spans = list(walk.take(None))

    assert [len(span.misshapen) for span in spans] == [SPAN_RECORDS, SPAN_RECORDS, 5]
    assert spans[1].misshapen[0][:2] == (SPAN_RECORDS + 2, 45)


def test_a_file_of_misshapen_rows_is_reported_row_by_row_in_line_order() -> None:
    rows = SPAN_RECORDS + 10
    result = run_check(wide_rows(rows), max_rows=rows)

    assert result.counts.invalid == rows
    lines = result.issues.column("line").to_pylist()
    assert lines == sorted(lines)
    assert len(set(lines)) == rows
    assert issues_by_line(result)[2] == ["row_column_count"]


def test_the_row_limit_is_enforced_while_misshapen_rows_are_walked() -> None:
    with pytest.raises(FileError) as raised:
        run_check(wide_rows(50_000), max_rows=1000)

    assert raised.value.code == "file_too_many_rows"


def test_issues_are_capped_per_row_with_a_note_of_how_many_more() -> None:
    result = run_check(many_issues(10))

    by_line = issues_by_line(result)
    assert all(len(codes) <= MAX_ROW_ISSUES + 1 for codes in by_line.values())
    notes = result.issues.filter(pc.equal(result.issues.column("code"), "row_issues_not_listed"))
    assert notes.num_rows == 10
    more = sum(int(v) for v in notes.column("value").to_pylist())
    assert result.counts.issues_not_listed == more > 0
    # Errors come first on a row: every row still says why it was not imported.
    assert all(codes[0].startswith("identity_") for codes in by_line.values())
    assert result.counts.invalid == 10


def test_the_report_lists_at_most_the_file_cap_and_counts_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(check, "MAX_LISTED_ISSUES", 25)

    result = run_check(many_issues(40))

    assert result.issues.num_rows == 25
    assert result.counts.invalid == 40
    assert result.counts.issues_not_listed > 40 * 4


def test_the_commonest_reasons_and_skipped_rows_are_counted_during_the_check() -> None:
    data = csv_lines(
        iter([f"{NUMBERS[0]};;Berg;3;3A", f"{NUMBERS[1]};;;3;3A", "123;Ada;Berg;3;3A"])
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = ObjectStore(pafs.LocalFileSystem(), tmp)
        result = check_file(
            Upload(lambda: pa.BufferReader(data), len(data)),
            request(),
            Rules(today=TODAY, level="compulsory"),
            limits=Limits(max_rows=100, max_bytes=1 << 20),
            report=ReportWriter(store, VALID_KEY, INVALID_KEY),
            stop=lambda: False,
        )

    assert [(r.code, r.rows) for r in result.reasons] == [
        ("given_name_missing", 2),
        ("family_name_missing", 1),
        ("identity_format", 1),
    ]
    assert result.reasons[0].message_en.startswith("The given name is missing")
    assert result.skipped == {"given_name_missing": 2, "identity_format": 1}


def test_a_chunk_of_many_tiny_rows_is_checked_in_parts_in_line_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(check, "CHUNK_ROWS", 7)
    rows = [f"{NUMBERS[i % 5]};Ada;Berg;3;3A" for i in range(30)]
    rows[10] += ";extra;fields"

    result = run_check(csv_lines(iter(rows)))

    lines = result.issues.column("line").to_pylist()
    assert lines == sorted(lines)
    assert issues_by_line(result)[12] == ["row_column_count"]
    assert result.counts.rows == 30


def test_a_header_of_many_characters_reaches_no_event_or_message_whole() -> None:
    padded = "Förnamn" + "\u0301" * 200_000  # combining marks fold away
    data = csv_lines(iter([f"{NUMBERS[0]};Ada;Berg;3;3A"])).replace(
        b"F\xc3\xb6rnamn", padded.encode(), 1
    )

    result = run_check(data)

    assert len(result.detected.columns["given_name"]) <= SHOWN_CHARS
    with pytest.raises(FileError) as raised:
        run_check(data.replace(b"Efternamn", padded.encode(), 1))
    assert raised.value.code == "file_repeated_column"
    assert len(raised.value.message) < 200


@pytest.mark.parametrize("quoted", [False, True])
def test_a_nul_after_the_first_64_kb_is_an_error_on_its_row(quoted: bool) -> None:
    data = nul_late()
    if quoted:
        data = data.replace(b";Berg;3;3A\r\n", b';"Berg";3;3A\r\n', 1)
    line = data.count(b"\n", 0, data.index(b"\x00")) + 1
    assert data.index(b"\x00") > 65_536

    result = run_check(data, max_rows=5000)

    assert issues_by_line(result)[line] == ["cell_control_character"]
    [issue] = result.issues.filter(pc.equal(result.issues.column("line"), line)).to_pylist()
    assert issue["column"] == "given_name"
    assert issue["value"] == "A\ufffdda"
    assert result.counts.invalid == 1
    assert "\x00" not in "".join(result.valid.column("given_name").to_pylist())


def test_control_characters_in_a_workbook_cell_are_an_error_on_its_row() -> None:
    # Excel writes a control character in a cell as _xHHHH_; openpyxl refuses to.
    rows = [ROSTERFLOW_HEADER[:3], [NUMBERS[0], "Ada_x0001_", "Berg"], [NUMBERS[1], "Bo", "Ek"]]
    data = sheet_xlsx(
        b"".join(
            f'<row r="{r}">'.encode()
            + b"".join(inline(f"{'ABC'[c]}{r}", v) for c, v in enumerate(row))
            + b"</row>"
            for r, row in enumerate(rows, start=1)
        )
    )

    result = run_check(data, fmt=FileFormat.ROSTERFLOW_XLSX)

    assert issues_by_line(result) == {2: ["cell_control_character"]}
    assert result.counts.valid == 1


@pytest.mark.parametrize("cell", ["\t=1+1", "\r@SUM(A1)", ' -1+HYPERLINK("http://x")'])
def test_a_formula_behind_a_tab_or_line_break_is_flagged(cell: str) -> None:
    quoted = '"' + cell.replace('"', '""') + '"'
    data = csv_lines(iter([f"{NUMBERS[0]};{quoted};Berg;3;3A"]))

    result = run_check(data)

    assert issues_by_line(result) == {2: ["cell_formula_like"]}


@pytest.mark.parametrize("quoted", [False, True])
def test_one_very_long_field_is_named_with_its_line_not_called_invalid_text(
    quoted: bool,
) -> None:
    data = one_long_field()
    if quoted:
        data = data.replace(b";Berg;3;3A\r\n", b';"Berg";3;3A\r\n', 1)

    with pytest.raises(FileError) as raised:
        run_check(data)

    assert raised.value.code == "file_field_too_long"
    assert "Line 2 has a field in the column 'Förnamn'" in raised.value.message


def test_excels_unicode_text_is_read_as_utf16_with_tabs() -> None:
    text = "\r\n".join(
        [
            HEADER.replace(";", "\t"),
            f"{NUMBERS[0]}\tÅsa\tÖberg\t3\t3A",
            f"{NUMBERS[1]}\tBo\tEk\t3\t3A",
        ]
    )
    data = text.encode("utf-16")  # with its byte-order mark, as Excel saves it

    result = run_check(data)

    assert result.detected.encoding == "utf-16"
    assert result.detected.delimiter == "\t"
    assert result.valid.column("given_name").to_pylist() == ["Åsa", "Bo"]
    assert result.valid.column("line").to_pylist() == [2, 3]


@pytest.mark.parametrize("quote", ["", '"'])
def test_a_csv_header_below_a_title_and_blank_lines_is_found_and_its_line_said(
    quote: str,
) -> None:
    data = (
        "Elevlista Solbackens skola;;;;\r\n;;;;\r\n\r\n"
        + HEADER
        + f"\r\n{NUMBERS[0]};{quote}Ada{quote};Berg;3;3A\r\n\r\n{NUMBERS[1]};Bo;;3;3A\r\n"
    ).encode()

    result = run_check(data)

    assert result.detected.header_line == 4
    assert result.valid.column("line").to_pylist() == [5]
    assert issues_by_line(result) == {7: ["family_name_missing"]}
    assert result.counts.rows == 3


def test_a_workbook_header_below_a_title_row_is_found_and_its_line_said() -> None:
    data = xlsx(
        ["Elevlista 2026"],
        [],
        ROSTERFLOW_HEADER,
        [NUMBERS[0], "Ada", "Berg", 3, "3A"],
        [NUMBERS[1], "Bo", "", 3, "3A"],
    )

    result = run_check(data, fmt=FileFormat.ROSTERFLOW_XLSX)

    assert result.detected.header_line == 3
    assert result.valid.column("line").to_pylist() == [4]
    assert issues_by_line(result) == {5: ["family_name_missing"]}


def test_without_a_header_among_the_first_rows_the_first_row_is_judged() -> None:
    data = ("Elevlista\r\n" + f"{NUMBERS[0]};Ada;Berg;3;3A\r\n").encode()

    with pytest.raises(FileError) as raised:
        run_check(data)

    assert raised.value.code == "file_no_header"
