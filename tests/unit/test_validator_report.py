"""The report written as the file is read: batches, duplicates across them, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from rosterflow.events import FileFormat
from rosterflow.testing import school_age_numbers
from services.validator import check, reading, workbook
from services.validator.check import Stopped
from services.validator.errors import FileError
from tests.support.checks import HEADER, csv, issues_by_line, run_check
from tests.support.workbooks import ROSTERFLOW_HEADER, xlsx

NUMBERS = school_age_numbers()


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read files in blocks of a few rows, so that a small file spans many batches."""
    monkeypatch.setattr(reading, "BLOCK_BYTES", 512)
    monkeypatch.setattr(workbook, "BATCH_ROWS", 10)


def roster(count: int, *, start: int = 0, extra: str = "") -> list[str]:
    numbers = NUMBERS[start : start + count]
    return [f"{n};Namn{i};Efternamn;5;5A{extra}" for i, n in enumerate(numbers)]


@pytest.mark.usefixtures("small_blocks")
def test_valid_rows_are_written_a_batch_at_a_time_in_line_order() -> None:
    result = run_check(csv(*roster(200)))

    assert result.row_groups > 10
    assert result.valid.column("line").to_pylist() == list(range(2, 202))
    assert result.counts.valid == 200


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("quoted", [False, True], ids=["fast-path", "exact-path"])
def test_duplicates_far_apart_in_the_file_are_found(quoted: bool) -> None:
    rows = roster(200)
    copy_of_first, conflict_of_second = rows[0], rows[1].replace("Namn1", "Annan")
    rows.insert(150, copy_of_first)
    rows.append(conflict_of_second)
    if quoted:
        rows[100] = rows[100].replace(";Namn", ';"Namn').replace(";Efternamn", '";Efternamn')

    result = run_check(csv(*rows))

    assert issues_by_line(result) == {
        3: ["duplicate_conflict"],
        152: ["duplicate_exact"],
        203: ["duplicate_conflict"],
    }
    identities = result.valid.column("identity_number").to_pylist()
    assert len(identities) == len(set(identities)) == 199
    assert NUMBERS[1] not in identities
    assert result.valid.column("line").to_pylist() == sorted(
        result.valid.column("line").to_pylist()
    )
    assert (result.counts.valid, result.counts.invalid, result.counts.warnings) == (199, 2, 1)


@pytest.mark.usefixtures("small_blocks")
def test_duplicate_issues_are_merged_into_the_report_in_line_order() -> None:
    rows = roster(100)
    rows[50] = rows[50].replace("Namn50", "")  # given name missing on line 52
    rows.append(rows[0])  # an exact copy of line 2, on line 102

    result = run_check(csv(*rows))

    lines = result.issues.column("line").to_pylist()
    assert lines == [52, 102]
    assert result.issues.column("message_en").to_pylist()[1].startswith("The row is an exact copy")


@pytest.mark.usefixtures("small_blocks")
def test_a_misshapen_row_late_in_an_unquoted_file_reads_it_again_exactly() -> None:
    rows = roster(200)
    rows[180] += ";extra"

    result = run_check(csv(*rows))

    assert issues_by_line(result) == {182: ["row_column_count"]}
    assert result.counts.valid == 199
    assert result.valid.column("line").to_pylist() == [n for n in range(2, 202) if n != 182]


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize(
    ("row", "given_name"),
    [
        pytest.param('{n};"Anna; Maria";Berg;5;5A', "Anna; Maria", id="delimiter-in-quotes"),
        pytest.param('{n};"Anna ""Ninni""";Berg;5;5A', 'Anna "Ninni"', id="doubled-quotes"),
        pytest.param('{n};Anna;Berg;5;5A;"x;y"', "Anna", id="quotes-in-an-unused-column"),
    ],
)
def test_a_quote_after_the_sample_reads_the_file_again_exactly(
    monkeypatch: pytest.MonkeyPatch, row: str, given_name: str
) -> None:
    monkeypatch.setattr(check, "SAMPLE_BYTES", 256)
    rows = roster(200, extra=";")
    rows[150] = row.format(n=NUMBERS[150]) + ("" if row.count(";") == 5 else ";")

    result = run_check(csv(*rows, header=HEADER + ";Anteckning"))

    assert result.issues.num_rows == 0
    assert result.counts.valid == 200
    assert result.valid.column("given_name").to_pylist()[150] == given_name
    assert result.valid.column("line").to_pylist() == list(range(2, 202))


@pytest.mark.usefixtures("small_blocks")
def test_a_workbook_is_read_in_batches_too() -> None:
    rows: list[list[str | int]] = [
        [n, f"Namn{i}", "Efternamn", 5, "5A"] for i, n in enumerate(NUMBERS[:55])
    ]

    result = run_check(xlsx(ROSTERFLOW_HEADER, *rows), fmt=FileFormat.ROSTERFLOW_XLSX)

    assert result.row_groups == 6
    assert result.valid.column("line").to_pylist() == list(range(2, 57))


@pytest.mark.usefixtures("small_blocks")
def test_stop_is_asked_between_batches_and_ends_the_check_there(tmp_path: Path) -> None:
    asked = 0

    def stop() -> bool:
        nonlocal asked
        asked += 1
        return asked > 3

    with pytest.raises(Stopped):
        run_check(csv(*roster(300)), stop=stop, store_dir=tmp_path)

    assert asked == 4
    assert not list(tmp_path.rglob("*.parquet*"))


@pytest.mark.usefixtures("small_blocks")
def test_too_many_rows_found_part_way_leaves_no_report(tmp_path: Path) -> None:
    with pytest.raises(FileError) as raised:
        run_check(csv(*roster(300)), max_rows=250, store_dir=tmp_path)

    assert raised.value.code == "file_too_many_rows"
    assert not list(tmp_path.rglob("*.parquet*"))


def test_the_report_of_a_file_that_was_checked_is_left_in_place(tmp_path: Path) -> None:
    run_check(csv(*roster(3)), store_dir=tmp_path)

    assert sorted(p.name for p in tmp_path.rglob("*.parquet*")) == [
        "invalid.parquet",
        "valid.parquet",
    ]


def test_header_constant_matches_the_template() -> None:
    assert HEADER.split(";") == ROSTERFLOW_HEADER
