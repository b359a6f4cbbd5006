"""The canonical roster row and how a file's header row maps onto it."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.validator import errors
from services.validator.errors import Label

# A student's contact data; a guardian has the same, under GUARDIAN_PREFIXES.
CONTACT = ("email", "phone", "phone_2", "phone_3", "street", "postcode", "city")
GUARDIAN_PREFIXES = ("guardian1_", "guardian2_")
GUARDIAN_FIELDS = ("name", "identity", *CONTACT)
GUARDIAN_COLUMNS = tuple(p + f for p in GUARDIAN_PREFIXES for f in GUARDIAN_FIELDS)
CANONICAL = (
    "identity",
    "given_name",
    "family_name",
    "grade",
    "class",
    *CONTACT,
    "protected",
    *GUARDIAN_COLUMNS,
)
REQUIRED = ("identity", "given_name", "family_name")

LABELS: Mapping[str, Label] = {
    "identity": Label("personnummer", "identity number"),
    "given_name": Label("förnamn", "given name"),
    "family_name": Label("efternamn", "family name"),
}


@dataclass(frozen=True)
class Layout:
    columns: dict[str, str]
    """Canonical column → the header as written in the file."""
    positions: dict[str, int]
    """Canonical column → its field's position in a row."""
    width: int
    """Fields in the header row."""

    def names(self) -> list[str]:
        """One name per field of a row: the canonical column, or a placeholder."""
        by_position = {p: c for c, p in self.positions.items()}
        return [by_position.get(i, f"_unused_{i}") for i in range(self.width)]


def fold(header: str) -> str:
    """Header names match regardless of case, spacing and å/ä/ö."""
    decomposed = unicodedata.normalize("NFKD", header.strip().lower())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in letters if c.isalnum())


def clean_header(cell: str) -> str:
    return cell.strip().strip('"').strip().lstrip("\ufeff")


def map_header(fields: Sequence[str], aliases: Mapping[str, str]) -> Layout:
    """Where each canonical column is; raises on a repeated column, not on a missing one."""
    columns: dict[str, str] = {}
    positions: dict[str, int] = {}
    for position, raw in enumerate(fields):
        header = clean_header(raw)
        canonical = aliases.get(fold(header))
        if not canonical:  # unknown, or mapped to nothing by the administrator
            continue
        if canonical in columns:
            raise errors.repeated_column(header)
        columns[canonical] = errors.shown(header)
        positions[canonical] = position
    return Layout(columns, positions, len(fields))


def missing_required(layout: Layout) -> list[str]:
    return [c for c in REQUIRED if c not in layout.columns]
