"""Reading an Excel roster (XLSX) with calamine: the first sheet, rows in chunks.

Line numbers are the spreadsheet's row numbers. An identity number typed into
a General cell becomes a number, which a workbook stores exactly: a whole
number of 10 or 12 digits (YYMMDDNNNC, YYYYMMDDNNNC) is read as those digits.
Any other number in the identity column reaches the rules as text that shows
it was a number (``101012392.0``: a leading zero lost; fractions, exponents),
which the identity rules report as changed by Excel, rather than a number
silently accepted or a leading zero silently lost.
"""

from __future__ import annotations

import io
import itertools
import zipfile
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta

import pyarrow as pa
from python_calamine import CalamineError, CalamineSheet, CalamineWorkbook, PasswordError

from services.validator import errors
from services.validator.header import Layout
from services.validator.reading import HEADER_CANDIDATES
from services.validator.sheet import measure_workbook
from services.validator.source import Chunk, Upload, canonical_batch

BATCH_ROWS = 10_000
# The header is looked for among the first non-empty rows (as many as a CSV's
# candidates), within the sheet's first rows.
_HEADER_SCAN_ROWS = 1000

Cell = int | float | str | bool | time | date | datetime | timedelta


def cell_text(value: Cell, *, identity: bool = False) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        if identity:
            whole = float(value).is_integer() and 0 < value < 10**12
            if whole and len(str(int(value))) in (10, 12):
                return str(int(value))
            # A number of any other length lost digits when Excel converted
            # it: show it as the number it became.
            return repr(float(value))
        if isinstance(value, float) and not value.is_integer():
            return repr(value)
        return str(int(value))
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _cannot_open() -> errors.FileError:
    return errors.unreadable(
        "Arbetsboken kunde inte öppnas. Spara den igen som .xlsx i Excel.",
        "The workbook could not be opened. Save it again as .xlsx in Excel.",
    )


class WorkbookReader:
    encoding = ""
    delimiter = ""

    def __init__(self, upload: Upload, max_rows: int, batch_rows: int | None = None) -> None:
        self._batch_rows = batch_rows or BATCH_ROWS
        # A workbook is a zip archive, read from its end: it is read whole.
        with upload.open() as source:
            data = source.read()
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                measure_workbook(archive, max_rows)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
            raise _cannot_open() from exc
        try:
            book = CalamineWorkbook.from_filelike(io.BytesIO(data))
            self._sheet: CalamineSheet = book.get_sheet_by_index(0)
        except PasswordError as exc:
            raise errors.unreadable(
                "Arbetsboken är lösenordsskyddad. Spara den utan lösenord och ladda upp den igen.",
                "The workbook is protected by a password. Save it without one and upload it again.",
            ) from exc
        except CalamineError as exc:
            raise _cannot_open() from exc
        self._rows = enumerate(self._sheet.iter_rows(), start=1)
        # The rows where the header may be, and the blank ones among them.
        self._ahead: list[tuple[int, Sequence[Cell]]] = []
        found = 0
        for number, row in self._rows:
            self._ahead.append((number, row))
            found += any(cell != "" for cell in row)
            if found == HEADER_CANDIDATES or number >= _HEADER_SCAN_ROWS:
                break
        candidates = self.header_rows()
        if not candidates:
            raise errors.empty()
        self.use_header(candidates[0][0])

    @property
    def detected_encoding(self) -> str:
        return self.encoding

    def header(self) -> list[str]:
        return self._header

    def header_rows(self) -> list[tuple[int, list[str]]]:
        return [
            (number, [cell_text(cell) for cell in row])
            for number, row in self._ahead
            if any(cell != "" for cell in row)
        ]

    def use_header(self, line: int) -> None:
        self.header_line = line
        self._header = next(fields for number, fields in self.header_rows() if number == line)

    def chunks(self, layout: Layout) -> Iterator[Chunk]:
        pending: list[tuple[int, Sequence[Cell]]] = []
        blank = 0
        after = [(number, row) for number, row in self._ahead if number > self.header_line]
        for number, row in itertools.chain(after, self._rows):
            if all(cell == "" for cell in row):
                blank += 1
                continue
            pending.append((number, row))
            if len(pending) == self._batch_rows:
                yield self._chunk(pending, blank, layout)
                pending, blank = [], 0
        if pending or blank:
            yield self._chunk(pending, blank, layout)

    @staticmethod
    def _chunk(rows: list[tuple[int, Sequence[Cell]]], blank: int, layout: Layout) -> Chunk:
        columns = {}
        for name, position in layout.positions.items():
            identity = name == "identity"
            columns[name] = pa.array(
                [
                    cell_text(row[position], identity=identity) if position < len(row) else ""
                    for _, row in rows
                ],
                pa.string(),
            )
        lines = pa.array([number for number, _ in rows], pa.int64())
        return Chunk(canonical_batch(columns), lines, blank=blank)
