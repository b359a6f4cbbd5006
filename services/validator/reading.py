"""Reading a CSV roster: encoding, delimiter, header row, then rows in chunks.

Most roster files have no quote character at all (Excel quotes only a field
holding the delimiter, a quote or a line break). Then every line is one
record, and pyarrow's reader alone gives the rows with their line numbers,
reading the file once: blank lines come through as empty rows, so rows and
lines stay in step. If pyarrow finds a row with the wrong number of fields it
can only skip it without saying where it was, and a quote in a value means
quoting matters; either way the reader asks for the file to be read again on
the exact path (records.py), which a file with a quote in its first
megabyte takes at once. A quote in a column the roster does not use is
harmless: it either stays inside that column or changes a row's number of
fields.

The header is the first of the first few non-empty lines that names the
format's required columns (a title or blank lines may stand above it); the
format chooses among ``header_rows`` and says ``use_header``. Reading starts
after the header line's bytes, and line numbers count from it. Excel's
*Unicode text* (UTF-16 with a byte-order mark) is transcoded to UTF-8 as it is
read (pyarrow's transcoding stream), so that every pass sees UTF-8.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pacsv

from services.validator import errors
from services.validator.header import Layout
from services.validator.records import LongRecord, arrow_csv_batches, long_field, read_exact
from services.validator.source import Chunk, ReadAgain, Upload

SAMPLE_BYTES = 1 << 20
BLOCK_BYTES = 2 << 20
DELIMITERS = (";", ",", "\t")
# Non-empty lines looked at for the header row.
HEADER_CANDIDATES = 10
_LINE_END = re.compile(rb"\r\n|\n|\r")
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(frozen=True)
class HeaderRow:
    line: int
    """The line the editor shows it on."""
    fields: list[str]
    delimiter: str
    data_offset: int
    """Where the rows after it start, in bytes (of the UTF-8 text, for UTF-16)."""


def utf16_upload(upload: Upload) -> Upload:
    """The upload as UTF-8, transcoded a block at a time as it is read."""

    def open_utf8() -> pa.NativeFile:
        return pa.transcoding_input_stream(upload.open(), "utf-16", "utf-8")

    return Upload(open_utf8, upload.size)


def utf16_sample(sample: bytes) -> bytes:
    """The sample as UTF-8; it may end inside a character, which is left out."""
    return codecs.getincrementaldecoder("utf-16")().decode(sample, final=False).encode()


def detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    # The sample may end inside a multi-byte character: a non-final decode
    # accepts an incomplete character at the end, and nothing else.
    try:
        # A sample shorter than SAMPLE_BYTES is the whole file: judge all of it.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=len(sample) < SAMPLE_BYTES)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def header_fields(sample: bytes, encoding: str) -> tuple[str, list[str]]:
    """The delimiter and the first line's fields."""
    first = header_rows(sample, encoding)[0]
    return first.delimiter, first.fields


def header_rows(sample: bytes, encoding: str) -> list[HeaderRow]:
    """The first HEADER_CANDIDATES non-empty lines of the sample, each read as a header row."""
    rows: list[HeaderRow] = []
    start = 0
    line = 0
    for end in _LINE_END.finditer(sample):
        line += 1
        row = _header_row(sample[start : end.start()], encoding, line, end.end())
        start = end.end()
        if row is not None:
            rows.append(row)
            if len(rows) == HEADER_CANDIDATES:
                return rows
    if start < len(sample):
        row = _header_row(sample[start:], encoding, line + 1, len(sample))
        if row is not None:
            rows.append(row)
    return rows or [HeaderRow(1, [], DELIMITERS[0], len(sample))]


def _header_row(raw: bytes, encoding: str, line: int, data_offset: int) -> HeaderRow | None:
    text = raw.decode(encoding, errors="replace")
    if line == 1:
        text = text.lstrip("\ufeff")
    # The delimiter is the candidate the header row uses most; a header with
    # none of them is one column, which the format's check then rejects.
    delimiter = max(DELIMITERS, key=text.count)
    if not text.replace(delimiter, "").strip():
        return None  # blank, or only delimiters (a spreadsheet's empty row)
    fields = next(csv.reader([text], delimiter=delimiter), [])
    return HeaderRow(line, fields, delimiter, data_offset)


def _quote_in(batch: pa.RecordBatch) -> bool:
    """A byte search over the columns' buffers (memchr: microseconds a batch)."""
    for column in batch.columns:
        data = column.buffers()[2]
        if data is not None and b'"' in data.to_pybytes():
            return True
    return False


class CsvReader:
    def __init__(
        self,
        upload: Upload,
        sample: bytes,
        block_size: int | None = None,
        *,
        max_rows: int | None = None,
    ) -> None:
        self.source_encoding = ""
        if sample.startswith(_UTF16_BOMS):
            upload, sample = utf16_upload(upload), utf16_sample(sample)
            self.source_encoding = "utf-16"
        self._upload = upload
        self._max_rows = max_rows
        self._block_size = block_size or BLOCK_BYTES
        self._exact = False
        self._sample = sample
        self.encoding = detect_encoding(sample)
        self._candidates = header_rows(sample, self.encoding)
        self.use_header(self._candidates[0].line)

    @property
    def detected_encoding(self) -> str:
        return self.source_encoding or self.encoding

    def header(self) -> list[str]:
        return self._header.fields

    def header_rows(self) -> list[tuple[int, list[str]]]:
        return [(row.line, row.fields) for row in self._candidates]

    def use_header(self, line: int) -> None:
        self._header = next(row for row in self._candidates if row.line == line)
        self.delimiter = self._header.delimiter
        self.header_line = line
        # The sample from the data rows on: a quote in a title line says nothing.
        self._data_sample = self._sample[self._header.data_offset :]

    def _open(self) -> pa.NativeFile:
        """The file positioned at its first data row."""
        source = self._upload.open()
        skipped = 0
        while skipped < self._header.data_offset:
            skipped += len(source.read(min(self._header.data_offset - skipped, 1 << 20)) or b"")
        return source

    def chunks(self, layout: Layout) -> Iterator[Chunk]:
        try:
            yield from self._chunks(layout)
        except LongRecord:
            with self._open() as source:
                found = long_field(source, self.delimiter, self.header_line + 1, self._block_size)
            line, position = found or (self.header_line + 1, None)
            fields = self._header.fields
            column = fields[position] if position is not None and position < len(fields) else None
            raise errors.field_too_long(line, column) from None

    def _chunks(self, layout: Layout) -> Iterator[Chunk]:
        if self._exact or b'"' in self._data_sample:
            yield from read_exact(
                Upload(self._open, self._upload.size),
                self.encoding,
                self.delimiter,
                layout,
                self._block_size,
                self._max_rows,
                first_line=self.header_line + 1,
            )
            return
        skipped = 0

        def skip(_row: pacsv.InvalidRow) -> str:
            nonlocal skipped
            skipped += 1
            # Stop at the first: a block of nothing but misshapen rows would
            # otherwise call this for each of them before the next batch.
            return "error"

        next_line = self.header_line + 1
        try:
            with self._open() as source:
                for batch in self._batches(source, layout, skip):
                    # The reader works ahead: a skip may belong to a later block,
                    # but from the first one on no line number can be trusted. A
                    # quote in a value means quoting, which this way ignores.
                    if skipped or _quote_in(batch):
                        self._exact = True
                        break
                    yield Chunk(batch, pa.arange(next_line, next_line + batch.num_rows))
                    next_line += batch.num_rows
        except errors.FileError:
            if not skipped:
                raise
        if skipped or self._exact:
            self._exact = True
            raise ReadAgain

    def _batches(
        self, source: pa.NativeFile, layout: Layout, skip: Callable[[pacsv.InvalidRow], str]
    ) -> Iterator[pa.RecordBatch]:
        parse = pacsv.ParseOptions(
            delimiter=self.delimiter,
            quote_char=False,
            newlines_in_values=False,
            # A blank line becomes an empty row, so rows keep step with lines.
            ignore_empty_lines=False,
            invalid_row_handler=skip,
        )
        return arrow_csv_batches(source, self.encoding, layout, parse, self._block_size)
