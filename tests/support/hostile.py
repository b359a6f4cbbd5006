"""Hostile and careless files, generated (no binary fixtures): each as the bytes of an upload.

Every file here is one that once stalled or crashed a stage, or that a real
administrator saves and the check must read. The corpus is shared by the unit
tests, the end-to-end test that runs it through the services as processes,
and the memory benchmark.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rosterflow.events import FileFormat
from rosterflow.testing import school_age_numbers

NUMBERS = school_age_numbers()
HEADER = "Personnummer;Förnamn;Efternamn;Årskurs;Klass"

_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" '
    b'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.spreadsheetml.sheet.main+xml"/>'
    b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.spreadsheetml.worksheet+xml"/></Types>'
)
_ROOT_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    b'<sheets><sheet name="Elever" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
)


def sheet_xlsx(sheet_data: bytes | Iterator[bytes], dimension: str | None = None) -> bytes:
    """A minimal workbook whose first sheet's <sheetData> holds ``sheet_data`` (inline strings)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(
                b'<?xml version="1.0" encoding="UTF-8"?>'
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            )
            if dimension:
                sheet.write(f'<dimension ref="{dimension}"/>'.encode())
            sheet.write(b"<sheetData>")
            for part in [sheet_data] if isinstance(sheet_data, bytes) else sheet_data:
                sheet.write(part)
            sheet.write(b"</sheetData></worksheet>")
    return out.getvalue()


def inline(reference: str, text: str) -> bytes:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<c r="{reference}" t="inlineStr"><is><t>{escaped}</t></is></c>'.encode()


def far_cell() -> bytes:
    """About 1.6 KB: the only cell is the sheet's last, XFD1048576."""
    return sheet_xlsx(b'<row r="1048576">' + inline("XFD1048576", "x") + b"</row>")


def far_dimension() -> bytes:
    """A header at A1 and a declared dimension of the whole sheet."""
    row = b'<row r="1">' + inline("A1", "Personnummer") + b"</row>"
    return sheet_xlsx(row, dimension="A1:XFD1048576")


def rows_without_references(rows: int) -> Iterator[bytes]:
    """Cells without r attributes: calamine places them one after another."""
    yield b"<row>" + b'<c t="inlineStr"><is><t>x</t></is></c>' * 300 + b"</row>"
    for _ in range(rows):
        yield b"<row><c/></row>"


def wide_unreferenced() -> bytes:
    return sheet_xlsx(rows_without_references(1))


def long_header_xlsx(length: int = 1_100_000) -> bytes:
    """A header cell of over a million characters (a few KB compressed)."""
    cells = inline("A1", "P" * length) + inline("B1", "Förnamn") + inline("C1", "Efternamn")
    row2 = inline("A2", NUMBERS[0]) + inline("B2", "Ada") + inline("C2", "Berg")
    return sheet_xlsx(b'<row r="1">' + cells + b'</row><row r="2">' + row2 + b"</row>")


def csv_lines(rows: Iterator[str]) -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode()


def wide_rows(rows: int, extra: int = 40) -> bytes:
    """Every row has more fields than the header: all of them misshapen."""
    filler = ";x" * extra
    return csv_lines(f"{NUMBERS[i % len(NUMBERS)]};Ada;Berg;3;3A{filler}" for i in range(rows))


FULL_HEADER = HEADER + ";E-post;Telefon;Gatuadress;Postnummer;Postort"


def many_issues(rows: int) -> bytes:
    """Every row breaks a rule in every column (ten issues a row)."""
    lines = (
        "=1+1;=A1;=B2;99;@SUM(A1);x@;abc;=C3;1;=D4"
        if i % 2
        else '12;+A1;-A1+1;grade;=cmd|x;@@;12;+B1;2;-1+HYPERLINK("x")'
        for i in range(rows)
    )
    return ("\r\n".join([FULL_HEADER, *lines]) + "\r\n").encode()


def nul_late(rows: int = 3000) -> bytes:
    """A NUL byte in a name after the first 64 KB."""
    lines = [f"{NUMBERS[i % len(NUMBERS)]};Ada;Berg;3;3A" for i in range(rows)]
    lines[-2] = f"{NUMBERS[0]};A\x00da;Berg;3;3A"
    return csv_lines(iter(lines))


def one_long_field(length: int = 2 << 20) -> bytes:
    """Valid UTF-8 with one field longer than any roster cell."""
    return csv_lines(iter([f"{NUMBERS[0]};{'å' * length};Berg;3;3A", f"{NUMBERS[1]};Bo;Ek;3;3A"]))


def tiny_misshapen_rows(size: int = 20 << 20) -> bytes:
    """About ``size`` bytes of short rows, every one wider than the header."""
    row = b"x;x;x;x;x;x\r\n"
    return (HEADER + "\r\n").encode() + row * (size // len(row))


def unpacking_part() -> bytes:
    """A small workbook whose shared strings unpack to 65 MB of spaces."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(far_cell())) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            if not info.filename.startswith("xl/worksheets/"):
                target.writestr(info, source.read(info))
        target.writestr("xl/worksheets/sheet1.xml", b"<worksheet><sheetData/></worksheet>")
        target.writestr("xl/sharedStrings.xml", b" " * (65 << 20))
    return out.getvalue()


@dataclass(frozen=True)
class Hostile:
    name: str
    fmt: FileFormat
    make: Callable[[], bytes]
    code: str | None
    """The code the job fails with; None for a file whose check ends awaiting
    confirmation with its bad rows reported."""


CORPUS = (
    Hostile("far_cell", FileFormat.ROSTERFLOW_XLSX, far_cell, "file_sheet_too_large"),
    Hostile("far_dimension", FileFormat.ROSTERFLOW_XLSX, far_dimension, "file_sheet_too_large"),
    Hostile("wide_unreferenced", FileFormat.ROSTERFLOW_XLSX, wide_unreferenced,
            "file_sheet_too_large"),
    Hostile("unpacking_part", FileFormat.ROSTERFLOW_XLSX, unpacking_part, "file_sheet_too_large"),
    Hostile("long_header", FileFormat.ROSTERFLOW_XLSX, long_header_xlsx,
            "file_missing_column"),
    Hostile("tiny_misshapen_rows", FileFormat.ROSTERFLOW_CSV, tiny_misshapen_rows,
            "file_too_many_rows"),
    Hostile("long_field", FileFormat.ROSTERFLOW_CSV, one_long_field, "file_field_too_long"),
    Hostile("many_issues", FileFormat.ROSTERFLOW_CSV, lambda: many_issues(300_000), None),
    Hostile("nul_late", FileFormat.ROSTERFLOW_CSV, nul_late, None),
)  # fmt: skip
