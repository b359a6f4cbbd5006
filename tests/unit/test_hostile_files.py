"""Hostile and careless files through check_file: bounded work, clear errors, rows reported."""

from __future__ import annotations

import pyarrow as pa
import pytest

from services.validator.errors import FileError
from services.validator.formats.rosterflow_csv import ALIASES
from services.validator.header import map_header
from services.validator.records import SPAN_RECORDS, RecordWalk
from tests.support.checks import issues_by_line, run_check
from tests.support.hostile import HEADER, wide_rows


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
