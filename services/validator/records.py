"""The exact CSV path: pyarrow reads the values, Python's csv module says where records start.

pyarrow's CSV reader is fast but cannot say on which line a record began once
a quoted field holds a line break, and it drops rows with the wrong number of
fields without saying where they were. Files with quotes, and files found to
have such rows, are read this way (reading.CsvReader). Python's C csv parser
splits records the same way, so a second reader walks the file in step with
pyarrow's batches (memory stays one batch deep) and notes the first line of every record:

* blank rows are counted as empty rows;
* a row whose fields beyond the header's width are all empty (Excel's
  trailing empty columns), or that ends early inside the header's trailing
  empty columns, is read from the csv module's fields and checked like any other;
* any other row with the wrong number of fields is an error, and its identity
  number is still read where it can be, so that a patient whose row had a
  stray delimiter is never archived.

Rows that are not of the header's width are handed on as they come, never
more than SPAN_RECORDS of them at once (a file of nothing but misshapen rows
streams like any other), and the row limit is enforced as records are walked.
"""

from __future__ import annotations

import csv
import io
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from services.validator import errors
from services.validator.header import Layout
from services.validator.source import MISSHAPEN_SCHEMA, Chunk, Upload, canonical_batch

# A roster cell is short; a field this long means the quoting is broken.
FIELD_LIMIT = 1 << 20
csv.field_size_limit(FIELD_LIMIT)
# Records other than good rows handed on at once; each costs a few dozen bytes.
SPAN_RECORDS = 20_000
# A misshapen row's identity number is kept for the archive's sake; a longer
# value is no identity number.
_IDENTITY_CHARS = 40


def arrow_encoding(encoding: str) -> str:
    return "utf8" if encoding.startswith("utf-8") else encoding


@dataclass
class Span:
    """The records from one good row after the previous span up to ``good`` good rows."""

    good_lines: array[int] = field(default_factory=lambda: array("q"))
    blank: int = 0
    rescued: list[tuple[int, list[str]]] = field(default_factory=list)
    misshapen: list[tuple[int, int, str | None]] = field(default_factory=list)
    """Line, number of fields, the identity number as written (where there is one)."""

    @property
    def others(self) -> int:
        return self.blank + len(self.rescued) + len(self.misshapen)


class RecordWalk:
    def __init__(
        self,
        source: pa.NativeFile,
        encoding: str,
        delimiter: str,
        layout: Layout,
        max_rows: int | None = None,
        first_line: int = 1,
    ) -> None:
        """``source`` starts at the header row, or at the data rows on ``first_line``."""
        # pyarrow's files speak Python's io protocol; newline="" leaves line
        # ends to the csv parser, which must see quoted line breaks as they are.
        text = io.TextIOWrapper(source, encoding=encoding, newline="")
        self._encoding = encoding
        self._reader = csv.reader(text, delimiter=delimiter, quotechar='"', doublequote=True)
        self._width = layout.width
        self._named = max(layout.positions.values(), default=-1) + 1
        self._identity = layout.positions.get("identity", 0)
        self._max_rows = max_rows
        self._end = first_line - 1
        self._records = self._walk(header=first_line == 1)
        if first_line == 1:
            next(self._records, None)  # the header row

    def _walk(self, header: bool) -> Iterator[tuple[int, list[str]]]:
        records = -1 if header else 0  # the header row is not one of the file's rows
        base = self._end
        try:
            for fields in self._reader:
                line = self._end + 1
                self._end = base + self._reader.line_num
                records += 1
                if self._max_rows is not None and records > self._max_rows:
                    raise errors.too_many_rows(self._max_rows)
                yield line, fields
        except UnicodeDecodeError as exc:
            raise errors.bad_text(self._encoding, exc.start) from exc
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise LongRecord from exc
            raise errors.bad_quoting() from exc

    def take(self, good: int | None) -> Iterator[Span]:
        """Walk on until ``good`` rows of the header's width were seen (None: to the end),
        in spans of at most SPAN_RECORDS other records each."""
        span = Span()
        seen = 0
        if good == 0:
            return
        for line, fields in self._records:
            if len(fields) == self._width:
                span.good_lines.append(line)
                seen += 1
                if good is not None and seen == good:
                    yield span
                    return
                continue
            if not any(f.strip() for f in fields):
                span.blank += 1
            elif len(fields) >= self._named and not any(f.strip() for f in fields[self._width :]):
                span.rescued.append((line, fields))
            else:
                identity = fields[self._identity] if len(fields) > self._identity else None
                if identity is not None and len(identity) > _IDENTITY_CHARS:
                    identity = None
                span.misshapen.append((line, len(fields), identity))
            if span.others >= SPAN_RECORDS:
                yield span
                span = Span()
        if good is not None:
            raise errors.bad_quoting()
        yield span


def read_exact(
    upload: Upload,
    encoding: str,
    delimiter: str,
    layout: Layout,
    block_size: int,
    max_rows: int | None = None,
    first_line: int = 2,
) -> Iterator[Chunk]:
    """The rows of a file opened at its first data row, which is on ``first_line``."""
    with upload.open() as values, upload.open() as records:
        walk = RecordWalk(records, encoding, delimiter, layout, max_rows, first_line)
        for batch in _arrow_batches(values, encoding, delimiter, layout, block_size):
            used = 0
            # The batch's good rows are in file order: a span takes the next ones.
            for span in walk.take(batch.num_rows):
                taken = len(span.good_lines)
                yield _chunk(batch.slice(used, taken), span, layout)
                used += taken
        none = canonical_batch(dict.fromkeys(layout.positions, pa.array([], pa.string())))
        for rest in walk.take(None):
            if rest.good_lines:
                raise errors.bad_quoting()
            if rest.others:
                yield _chunk(none, rest, layout)


def _arrow_batches(
    source: pa.NativeFile, encoding: str, delimiter: str, layout: Layout, block_size: int
) -> Iterator[pa.RecordBatch]:
    """The rows of the header's width; the walk finds each of the others."""
    parse = pacsv.ParseOptions(
        delimiter=delimiter, newlines_in_values=True, invalid_row_handler=lambda _row: "skip"
    )
    return arrow_csv_batches(source, encoding, layout, parse, block_size)


def arrow_csv_batches(
    source: pa.NativeFile,
    encoding: str,
    layout: Layout,
    parse: pacsv.ParseOptions,
    block_size: int,
) -> Iterator[pa.RecordBatch]:
    """pyarrow's streaming reader over the data rows, every value a string."""
    names = layout.names()
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(
                encoding=arrow_encoding(encoding),
                column_names=names,
                block_size=block_size,
            ),
            parse_options=parse,
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                include_columns=list(layout.positions),
            ),
        )
        for batch in reader:
            yield canonical_batch({n: batch.column(n) for n in layout.positions})
    except pa.ArrowInvalid as exc:
        if str(exc).startswith("Empty CSV file"):
            return  # nothing after the header row
        if "straddling" in str(exc) or "straddles" in str(exc):
            # One record longer than a block: valid text, but no roster row.
            raise LongRecord from exc
        raise errors.bad_text(encoding) from exc
    except UnicodeDecodeError as exc:
        raise errors.bad_text(encoding) from exc


class LongRecord(Exception):
    """A record longer than the reader's block: the caller finds where it is (long_field)."""


def long_field(
    source: pa.NativeFile, delimiter: str, first_line: int, line_limit: int
) -> tuple[int, int | None] | None:
    """The first line with a field longer than FIELD_LIMIT bytes (and that field's
    position), or else longer than ``line_limit`` bytes (no position); read a block
    at a time, whatever the lengths. Quotes are not followed: a line is what an
    editor shows."""
    ends = re.compile(b"[" + re.escape(delimiter.encode()) + b"\r\n]")
    line, field, length, line_length = first_line, 0, 0, 0
    cr_at, offset = -2, 0
    while block := source.read(1 << 20):
        position = 0
        for end in ends.finditer(block):
            length += end.start() - position
            line_length += end.start() - position
            if length > FIELD_LIMIT:
                return line, field
            if line_length > line_limit:
                return line, None
            here, found = offset + end.start(), end.group()
            if found == b"\r" or (found == b"\n" and cr_at != here - 1):
                line, field, line_length = line + 1, 0, 0
            elif found != b"\n":
                field += 1
            if found == b"\r":
                cr_at = here
            length, position = 0, end.end()
        length += len(block) - position
        line_length += len(block) - position
        if length > FIELD_LIMIT:
            return line, field
        if line_length > line_limit:
            return line, None
        offset += len(block)
    return None


def _chunk(batch: pa.RecordBatch, span: Span, layout: Layout) -> Chunk:
    if len(span.good_lines) != batch.num_rows:
        raise errors.bad_quoting()
    lines = pa.array(span.good_lines, pa.int64())
    if span.rescued:
        rescued = canonical_batch(
            {
                name: pa.array([fields[position] for _, fields in span.rescued], pa.string())
                for name, position in layout.positions.items()
            }
        )
        batch = pa.concat_batches([batch, rescued])
        lines = pa.concat_arrays([lines, pa.array([line for line, _ in span.rescued], pa.int64())])
        order = pc.sort_indices(lines)
        batch, lines = batch.take(order), lines.take(order)
    line, fields, identity = zip(*span.misshapen, strict=True) if span.misshapen else ((), (), ())
    misshapen = pa.Table.from_arrays(
        [pa.array(line, pa.int64()), pa.array(fields, pa.int64()), pa.array(identity, pa.string())],
        schema=MISSHAPEN_SCHEMA,
    )
    return Chunk(batch, lines, blank=span.blank, misshapen=misshapen)
