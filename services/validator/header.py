"""The canonical roster row and how a file's header row maps onto it."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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
    repeated: dict[str, list[int]] = field(default_factory=dict)
    """Canonical column → the positions of the header's columns that all name it: none
    of them is read (in columns and positions) until a mapping says which is which."""

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


# The alias key of a header's column by its position, for a mapping that tells apart
# columns of one name: a folded name is letters and digits only, so never starts so.
POSITION_MARK = "#"


def at_position(position: int) -> str:
    return f"{POSITION_MARK}{position}"


def column_of(position: int, cell: str, aliases: Mapping[str, str]) -> str | None:
    """The canonical column a header cell names: by its position where a mapping says, else
    by its name ("" or None: not read)."""
    by_position = aliases.get(at_position(position))
    if by_position is not None:
        return by_position
    return aliases.get(fold(clean_header(cell)))


def map_header(fields: Sequence[str], aliases: Mapping[str, str]) -> Layout:
    """Where each canonical column is; a column named more than once is in ``repeated``,
    not read; a missing one is simply absent."""
    columns: dict[str, str] = {}
    positions: dict[str, int] = {}
    repeated: dict[str, list[int]] = {}
    for position, raw in enumerate(fields):
        canonical = column_of(position, raw, aliases)
        if not canonical:  # unknown, or mapped to nothing by the administrator
            continue
        if canonical in repeated:
            repeated[canonical].append(position)
        elif canonical in positions:
            repeated[canonical] = [positions.pop(canonical), position]
            del columns[canonical]
        else:
            columns[canonical] = errors.shown(clean_header(raw))
            positions[canonical] = position
    return Layout(columns, positions, len(fields), repeated)


def missing_required(layout: Layout) -> list[str]:
    return [c for c in REQUIRED if c not in layout.columns and c not in layout.repeated]
