"""What every reader hands the row rules: chunks of canonical string rows with their lines."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

from services.validator.header import CANONICAL, Layout

# Rows with the wrong number of fields: where they are, how many fields they
# had, and the identity number as written where there was one.
MISSHAPEN_SCHEMA = pa.schema(
    [("line", pa.int64()), ("fields", pa.int64()), ("identity", pa.string())]
)


@dataclass(frozen=True)
class Upload:
    """The uploaded file: opened anew for every pass over it."""

    open: Callable[[], pa.NativeFile]
    size: int


@dataclass(frozen=True)
class Chunk:
    rows: pa.RecordBatch
    """The file's canonical columns (header.CANONICAL), as strings."""
    lines: pa.Array
    """The line (or spreadsheet row) of each row, as the administrator's editor shows it."""
    blank: int = 0
    """Blank rows in this part of the file, not in ``rows``."""
    misshapen: pa.Table = field(default_factory=MISSHAPEN_SCHEMA.empty_table)

    @property
    def count(self) -> int:
        return int(self.rows.num_rows + self.blank + self.misshapen.num_rows)


class ReadAgain(Exception):
    """The reader's fast way failed part-way: discard its chunks and call chunks() again."""


class Reader(Protocol):
    """One kind of file (text, workbook): its header row, then its rows in chunks.

    The rows above the header (a title, blank rows) are not the file's rows.

    ``chunks`` may raise ReadAgain once, after which a second call reads the
    whole file again another way.
    """

    encoding: str
    delimiter: str
    header_line: int
    """The line the header row was found on."""

    @property
    def detected_encoding(self) -> str:
        """The file's encoding as the check result names it (empty for a workbook)."""
        ...

    def header(self) -> list[str]:
        """The chosen header row's fields (at first, the first non-empty row's)."""
        ...

    def header_rows(self) -> list[tuple[int, list[str]]]:
        """The first few non-empty rows, each with its line: where the header may be."""
        ...

    def use_header(self, line: int) -> None:
        """Read the rows after the header row on ``line`` (one of ``header_rows``)."""
        ...

    def chunks(self, layout: Layout) -> Iterator[Chunk]: ...


def canonical_batch(columns: Mapping[str, pa.Array]) -> pa.RecordBatch:
    """The file's columns under their canonical names, in canonical order; absent ones absent."""
    names = [name for name in CANONICAL if name in columns]
    return pa.RecordBatch.from_arrays([columns[name] for name in names], names=names)
