"""Workbooks measured before calamine expands them: a sheet too large is a file-level error."""

from __future__ import annotations

import io
import zipfile

import pytest

from rosterflow.events import FileFormat
from services.validator.errors import FileError
from services.validator.sheet import MAX_COLUMNS, measure_workbook, scan_sheet
from tests.support.checks import run_check
from tests.support.hostile import (
    far_cell,
    far_dimension,
    inline,
    sheet_xlsx,
    unpacking_part,
    wide_unreferenced,
)
from tests.support.workbooks import NUMBERS, ROSTERFLOW_HEADER, xlsx


def rejected(data: bytes) -> FileError:
    with pytest.raises(FileError) as raised:
        run_check(data, fmt=FileFormat.ROSTERFLOW_XLSX)
    return raised.value


def test_a_small_workbook_whose_only_cell_is_the_last_is_refused_before_it_is_expanded() -> None:
    data = far_cell()
    assert len(data) < 2000

    error = rejected(data)

    assert error.code == "file_sheet_too_large"
    assert "1048576 rows and 16384 columns" in error.message


def test_a_declared_dimension_of_the_whole_sheet_is_refused() -> None:
    assert rejected(far_dimension()).code == "file_sheet_too_large"


def test_cells_without_references_are_counted_where_calamine_places_them() -> None:
    assert rejected(wide_unreferenced()).code == "file_sheet_too_large"


def test_a_part_that_unpacks_beyond_the_limit_is_refused_from_the_archive_directory() -> None:
    error = rejected(unpacking_part())

    assert error.code == "file_sheet_too_large"
    assert "unpacks to" in error.message


def test_more_rows_than_the_row_limit_are_refused_before_expanding() -> None:
    rows = b"".join(
        f'<row r="{r}">'.encode() + inline(f"A{r}", "x") + b"</row>" for r in range(1, 1200)
    )
    assert rejected(sheet_xlsx(rows)).code == "file_sheet_too_large"


def test_an_ordinary_workbook_measures_what_it_holds() -> None:
    data = xlsx(ROSTERFLOW_HEADER, [NUMBERS[0], "Märta", "Åberg", 3, "3A"], first_row=3)

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        extent = measure_workbook(archive, 1000)

    assert (extent.rows, extent.columns) == (4, 5)
    assert run_check(data, fmt=FileFormat.ROSTERFLOW_XLSX).counts.valid == 1


def test_a_sheet_is_scanned_across_block_ends_with_prefixes_and_self_closing_cells() -> None:
    cells = b"".join(b"<x:c/>" for _ in range(MAX_COLUMNS + 1))
    xml = io.BytesIO(b"<x:sheetData><x:row>" + b" " * ((1 << 20) - 7) + cells + b"</x:row>")

    extent = scan_sheet(xml)

    assert (extent.rows, extent.columns) == (1, MAX_COLUMNS + 1)
