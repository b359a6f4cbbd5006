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
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.csv as pacsv

from services.validator.header import Layout
from services.validator.records import arrow_csv_batches, read_exact
from services.validator.source import Chunk, ReadAgain, Upload

SAMPLE_BYTES = 1 << 20
BLOCK_BYTES = 2 << 20
DELIMITERS = (";", ",", "\t")


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
    """The delimiter and the header row's fields."""
    text = sample.decode(encoding, errors="replace")
    lines = text.splitlines()
    header_line = lines[0] if lines else ""
    # The delimiter is the candidate the header row uses most; a header with
    # none of them is one column, which the format's check then rejects.
    delimiter = max(DELIMITERS, key=header_line.count)
    fields = next(csv.reader([header_line], delimiter=delimiter), [])
    return delimiter, fields


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
        self._upload = upload
        self._max_rows = max_rows
        self._block_size = block_size or BLOCK_BYTES
        self._exact = False
        self._sample = sample
        self.encoding = detect_encoding(sample)
        self.delimiter, self._fields = header_fields(sample, self.encoding)

    def header(self) -> list[str]:
        return self._fields

    def chunks(self, layout: Layout) -> Iterator[Chunk]:
        if self._exact or b'"' in self._sample:
            yield from read_exact(
                self._upload,
                self.encoding,
                self.delimiter,
                layout,
                self._block_size,
                self._max_rows,
            )
            return
        skipped = 0

        def skip(_row: pacsv.InvalidRow) -> str:
            nonlocal skipped
            skipped += 1
            return "skip"

        next_line = 2  # the header is line 1
        with self._upload.open() as source:
            for batch in self._batches(source, layout, skip):
                # The reader works ahead: a skip may belong to a later block,
                # but from the first one on no line number can be trusted. A
                # quote in a value means quoting, which this way ignores.
                if skipped or _quote_in(batch):
                    self._exact = True
                    break
                yield Chunk(batch, pa.arange(next_line, next_line + batch.num_rows))
                next_line += batch.num_rows
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
