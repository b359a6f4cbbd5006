"""Where each record of a CSV file starts, as the administrator's editor counts lines.

pyarrow's CSV reader is fast but cannot say on which line a record began once
a quoted field holds a line break, and it drops blank lines and rows with the
wrong number of fields. This pass (Python's C csv parser, which splits records
the same way) notes the first line of every record and sorts out what pyarrow
will not deliver:

* blank rows are counted as empty rows;
* a row with extra fields that are all empty (Excel's trailing empty columns)
  is rescued and checked like any other;
* any other row with the wrong number of fields is an error, and its identity
  number is still read where it can be, so that a patient whose row had a
  stray delimiter is never archived.
"""

from __future__ import annotations

import csv
import io
from array import array
from dataclasses import dataclass, field

import pyarrow as pa

from services.validator.reading import FileError, Layout

# A roster cell is short; a field this long means the quoting is broken.
csv.field_size_limit(1 << 20)


@dataclass(frozen=True)
class LooseRow:
    line: int
    fields: list[str]


@dataclass
class RecordScan:
    good_lines: array[int] = field(default_factory=lambda: array("q"))
    empty: int = 0
    rescued: list[LooseRow] = field(default_factory=list)
    misshapen: list[LooseRow] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.good_lines) + self.empty + len(self.rescued) + len(self.misshapen)

    def lines(self, start: int, count: int) -> pa.Array:
        return pa.array(self.good_lines[start : start + count], pa.int64())


def scan_records(source: pa.NativeFile, layout: Layout, max_rows: int) -> RecordScan:
    width = len(layout.names)
    # pyarrow's files speak Python's io protocol; newline="" leaves line ends
    # to the csv parser, which must see quoted line breaks as they are.
    text = io.TextIOWrapper(source, encoding=layout.encoding, newline="")
    reader = csv.reader(text, delimiter=layout.delimiter, quotechar='"', doublequote=True)
    scan = RecordScan()
    try:
        next(reader, None)  # the header row
        previous_end = reader.line_num
        for fields in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if len(fields) == width:
                scan.good_lines.append(line)
            elif not any(f.strip() for f in fields):
                scan.empty += 1
            elif len(fields) > width and not any(f.strip() for f in fields[width:]):
                scan.rescued.append(LooseRow(line, fields[:width]))
            else:
                scan.misshapen.append(LooseRow(line, fields))
            if scan.rows > max_rows:
                raise FileError(
                    "file_too_many_rows", f"The file has more than {max_rows} rows, the limit."
                )
    except UnicodeDecodeError as exc:
        raise FileError(
            "file_unreadable",
            f"The file is not valid {layout.encoding} text (a byte that cannot be read "
            f"near position {exc.start}). Save it again as UTF-8 or Windows-1252 CSV.",
        ) from exc
    except csv.Error as exc:
        raise FileError("file_unreadable", f"The file could not be read as CSV: {exc}") from exc
    return scan
