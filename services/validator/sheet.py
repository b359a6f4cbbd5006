"""A workbook measured before it is expanded.

calamine allocates the whole rectangle a sheet spans (a sheet's declared
dimension, and every cell from A1 to the farthest one) before it returns a
single row, and an allocation it cannot make aborts the process rather than
raising. A workbook is a zip archive of XML parts, so what calamine would
expand can be measured first: each part's uncompressed size from the archive's
directory (zipfile stops at that size and checks the CRC, as calamine's zip
reader does), and the first sheet's extent from its XML, streamed a block at a
time without keeping it.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from services.validator import errors

# The roster is in the first sheet; everything it spans is expanded, and read
# a row at a time into Python, at about 100 MB a million cells: 1.5 million
# (150,000 rows of ten columns) keep the validator within 400 MiB. A larger
# roster is read as CSV, a block at a time. More columns than a roster has are
# blank columns a spreadsheet kept.
MAX_COLUMNS = 256
MAX_CELLS = 1_500_000
# The first sheet's XML is streamed; the other parts calamine reads (shared
# strings, styles, the workbook) are held whole.
MAX_SHEET_XML = 1 << 30
MAX_PART = 64 << 20
# The parts that say which sheet is first are small.
_MAX_INDEX_PART = 4 << 20
_BLOCK = 1 << 20
# A tag longer than this is no spreadsheet's.
_MAX_TAG = 1 << 20

_PREFIX = rb"(?:[A-Za-z_][\w.-]*:)?"
_TAG = re.compile(rb"<" + _PREFIX + rb"(row|c|dimension)(?=[\s/>])[^>]*>")
_ROW_ATTR = re.compile(rb'\sr="([0-9]{1,9})"')
_CELL_ATTR = re.compile(rb'\sr="([A-Za-z]{1,4})([0-9]{1,9})"')
_REF_ATTR = re.compile(rb'\sref="([^"]*)"')
_CORNER = re.compile(rb"([A-Za-z]{1,4})([0-9]{1,9})$")
_FIRST_SHEET = re.compile(rb"<" + _PREFIX + rb"sheet\s[^>]*\s" + _PREFIX + rb'id="([^"]+)"')
_RELATIONSHIP = re.compile(rb"<" + _PREFIX + rb"Relationship\s[^>]*>")
_ID = re.compile(rb'\sId="([^"]+)"')
_TARGET = re.compile(rb'\sTarget="([^"]+)"')


@dataclass(frozen=True)
class Extent:
    rows: int
    """The last row anything is in (1-based)."""
    columns: int
    """The last column anything is in (1-based)."""

    @property
    def cells(self) -> int:
        return self.rows * self.columns


def column_number(letters: bytes) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - ord("A") + 1
    return number


def measure_workbook(archive: zipfile.ZipFile, max_rows: int) -> Extent:
    """The first sheet's extent; raises FileError when expanding it would not fit."""
    for info in archive.infolist():
        if info.file_size > MAX_PART and not info.filename.startswith("xl/worksheets/"):
            raise errors.sheet_too_large_part(info.file_size)
    sheets = _first_sheet(archive)
    extent = Extent(0, 0)
    for name in sheets:
        info = archive.getinfo(name)
        if info.file_size > MAX_SHEET_XML:
            raise errors.sheet_too_large_part(info.file_size)
        with archive.open(info) as xml:
            found = scan_sheet(xml)
        extent = Extent(max(extent.rows, found.rows), max(extent.columns, found.columns))
    # The header and a few title or blank rows above it come on top of the row limit.
    if extent.columns > MAX_COLUMNS or extent.cells > MAX_CELLS or extent.rows > max_rows + 100:
        raise errors.sheet_too_large(extent.rows, extent.columns, MAX_COLUMNS, MAX_CELLS)
    return extent


def _first_sheet(archive: zipfile.ZipFile) -> list[str]:
    """The first sheet's part, as calamine finds it; every sheet when that cannot be told."""
    names = set(archive.namelist())
    every = sorted(n for n in names if "worksheets/" in n and n.endswith(".xml"))
    workbook = _small_part(archive, "xl/workbook.xml")
    rels = _small_part(archive, "xl/_rels/workbook.xml.rels")
    first = _FIRST_SHEET.search(workbook or b"")
    if first is None or rels is None:
        return every
    for relationship in _RELATIONSHIP.finditer(rels):
        tag = relationship.group(0)
        rid, target = _ID.search(tag), _TARGET.search(tag)
        if rid is None or target is None or rid.group(1) != first.group(1):
            continue
        path = target.group(1).decode("utf-8", "replace")
        name = path.lstrip("/") if path.startswith("/") else "xl/" + path
        return [name] if name in names else every
    return every


def _small_part(archive: zipfile.ZipFile, name: str) -> bytes | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > _MAX_INDEX_PART:
        raise errors.sheet_too_large_part(info.file_size)
    return archive.read(info)


def _tags(xml: IO[bytes]) -> Iterator[re.Match[bytes]]:
    """The row, cell and dimension tags of a sheet's XML, read a block at a time."""
    carry = b""
    while block := xml.read(_BLOCK):
        text = carry + block
        # Only a tag can be cut by a block's end; text between tags is dropped.
        end = text.rfind(b">") + 1
        yield from _TAG.finditer(text, 0, end)
        rest = text[end:]
        start = rest.rfind(b"<")
        carry = rest[start:] if start >= 0 else b""
        if len(carry) > _MAX_TAG:
            raise errors.sheet_too_large_part(len(carry))


def scan_sheet(xml: IO[bytes]) -> Extent:
    """The extent calamine would expand: the declared dimension and every row and cell.

    Cells without a reference take the next column of their row, and rows
    without one the next row, as calamine places them.
    """
    rows = columns = 0
    row = column = 0
    for tag in _tags(xml):
        kind, text = tag.group(1), tag.group(0)
        if kind == b"row":
            number = _ROW_ATTR.search(text)
            row = int(number.group(1)) if number else row + 1
            column = 0
        elif kind == b"c":
            reference = _CELL_ATTR.search(text)
            if reference:
                column = column_number(reference.group(1))
                row = max(row, int(reference.group(2)))
            else:
                column += 1
            columns = max(columns, column)
            rows = max(rows, row)
        else:
            ref = _REF_ATTR.search(text)
            for corner in ref.group(1).split(b":") if ref else ():
                found = _CORNER.search(corner.replace(b"$", b""))
                if found:
                    columns = max(columns, column_number(found.group(1)))
                    rows = max(rows, int(found.group(2)))
    return Extent(rows, columns)
