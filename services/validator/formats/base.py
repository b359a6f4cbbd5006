"""What a roster format is: the kinds of file it comes in and the names of its columns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rosterflow.events import FileFormat
from services.validator.errors import FileError, Label
from services.validator.header import (
    REQUIRED,
    Layout,
    column_of,
    map_header,
    missing_required,
)
from services.validator.mapping import Remembered
from services.validator.reading import CsvReader
from services.validator.sniff import Container
from services.validator.source import Reader, Upload
from services.validator.workbook import WorkbookReader


def aliases(**columns: tuple[str, ...]) -> dict[str, str]:
    """Folded header name → canonical column, from canonical column → header names."""
    return {header: column for column, headers in columns.items() for header in headers}


@dataclass(frozen=True)
class Lookalike:
    """A kind of file people choose by mistake, recognised by columns only it has."""

    label: Label
    signature: frozenset[str]
    """Folded header names that are all present in such a file."""

    def matches(self, folded: set[str]) -> bool:
        return self.signature <= folded


@dataclass(frozen=True)
class RosterFormat:
    """A roster format: read by the reader for its kind of file, mapped by its column names.

    A format whose files need another reader (OneRoster's zip of CSV files)
    overrides ``reader``.
    """

    id: FileFormat
    label: Label
    containers: frozenset[Container]
    aliases: Mapping[str, str]
    """Folded header name → canonical column."""
    template: Mapping[str, str]
    """Canonical column → the header this format's files use, to name a missing one."""

    def reader(self, container: Container, upload: Upload, sample: bytes, max_rows: int) -> Reader:
        if container is Container.TEXT:
            return CsvReader(upload, sample, max_rows=max_rows)
        if container is Container.XLSX:
            return WorkbookReader(upload, max_rows)
        raise ValueError(f"{self.id} has no reader for {container}")

    def layout(self, header: list[str], mapped: Mapping[str, str] | None = None) -> Layout:
        """Where the columns are; ``mapped`` (folded name → canonical column, or "" for none)
        is the administrator's remembered mapping, over the format's own names."""
        return map_header(header, {**self.aliases, **mapped} if mapped else self.aliases)

    def names_required(self, header: list[str], mapped: Mapping[str, str] | None = None) -> bool:
        """The row names every required column (perhaps more than once)."""
        aliases = {**self.aliases, **mapped} if mapped else self.aliases
        named = {column_of(position, cell, aliases) for position, cell in enumerate(header)}
        return all(column in named for column in REQUIRED)

    def prepare(self, reader: Reader, remembered: Remembered | None) -> None:
        """What the remembered mapping tells the reader besides the columns (OneRoster's org);
        raises FileError when the file cannot be read without more of it."""

    def extra(self, reader: Reader) -> Mapping[str, Any]:
        """More for the check result's column report (OneRoster: the file's orgs)."""
        return {}

    def refuses(self, reader: Reader, archive_missing: bool) -> FileError | None:
        """Why this file cannot be imported with these options, if it cannot."""
        return None

    def fits(self, header: list[str]) -> bool:
        """Every required column is named the way this format names it."""
        layout = self.layout(header)
        # A repeated column: not this format's file either.
        return not layout.repeated and not missing_required(layout)
