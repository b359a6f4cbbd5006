"""Column mapping: which of a file's columns the format did not recognise, what they may hold,
and the administrator's remembered mapping for a header.

A suggestion comes from the column's name first: the name of a system's
preset (presets.toml: IST Extens, Tersus Adela, Procapita) or of the format's
own columns, exactly or by likeness (difflib's ratio over folded names: a
header has a few dozen names and the known names are about a hundred, so a
few thousand comparisons at most, far below what a fuzzy-matching library is
needed for). A column whose name says nothing is judged by its values, from
the rows read while looking for the header: an identity-number column is one
whose values the identity rules accept, an email column one whose values look
like addresses.

A mapping is keyed by the unit, the format and the header's folded names in
order (``header_key``): the next file with the same header is read with it.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from services.validator.errors import shown
from services.validator.header import (
    CANONICAL,
    POSITION_MARK,
    REQUIRED,
    at_position,
    clean_header,
    fold,
)
from services.validator.identity import IdentityError, parse_identity

# How alike two folded names must be to suggest one for the other.
NAME_LIKENESS = 0.8
# Of a column's non-blank sample values, the share that must look like the kind.
VALUE_SHARE = 0.8
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Preset:
    system: str
    label: str
    aliases: Mapping[str, str]
    """Folded header name → canonical column."""


@cache
def presets() -> tuple[Preset, ...]:
    """The systems' known column names, read once from presets.toml."""
    text = resources.files("services.validator.formats").joinpath("presets.toml").read_text()
    found = []
    for system, table in tomllib.loads(text).items():
        unknown = set(table) - {"label", *CANONICAL}
        if unknown:
            raise ValueError(f"presets.toml [{system}] names unknown columns {sorted(unknown)}")
        aliases = {
            fold(name): column
            for column, names in table.items()
            if column != "label"
            for name in names
        }
        found.append(Preset(system, str(table["label"]), aliases))
    return tuple(found)


def header_key(header: Sequence[str]) -> str:
    """The key a remembered mapping is found by: the header's folded names, in order."""
    folded = "\x1f".join(fold(clean_header(cell)) for cell in header)
    return hashlib.sha256(folded.encode()).hexdigest()


@dataclass(frozen=True)
class Unmatched:
    """A column of the file the format did not map, and what it may hold."""

    name: str
    """The header as written (cut for showing)."""
    position: int
    suggestion: str | None
    """A canonical column, or None when nothing suggests one."""
    reason: str | None
    """``name`` (a known name), ``name_likeness``, ``values``, ``preset:<system>`` or
    ``repeated``: one of the header's columns that name the same roster column (or have
    one name), listed each so that a mapping says which is read as what."""


@dataclass(frozen=True)
class ColumnReport:
    """What the check result says about the file's columns beyond the format's own names."""

    header: list[str]
    """The header row as written, each name cut for showing."""
    key: str
    """The header's key (header_key), which a mapping for it is saved under."""
    unmatched: list[Unmatched]
    missing: list[str]
    """Required canonical columns the file does not name."""
    applied: bool
    """A remembered mapping for this header was used."""

    def as_json(self) -> dict[str, Any]:
        return {
            "header": self.header,
            "header_key": self.key,
            "unmatched": [asdict(u) for u in self.unmatched],
            "missing": self.missing,
            "applied": self.applied,
        }


def report(
    header: Sequence[str],
    taken: Mapping[str, int],
    aliases: Mapping[str, str],
    samples: Sequence[Sequence[str]],
    *,
    applied: bool,
    today: date,
    repeated: Mapping[str, Sequence[int]] | None = None,
) -> ColumnReport:
    """The file's unmatched columns with suggestions; ``taken``: canonical column → position;
    ``repeated``: canonical column → the positions of the columns that all name it.

    A repeated column's first position is suggested as the column its name means, the
    others nothing: reading the first is what the administrator most often wants, and two
    suggestions of one column could not be saved. A column whose name the header repeats
    is listed even when read (as what it is read as), so that a mapping names each of them.
    """
    repeats = repeated or {}
    free = [c for c in CANONICAL if c not in taken and c not in repeats]
    first_of = {positions[0]: column for column, positions in repeats.items()}
    unresolved = {p for positions in repeats.values() for p in positions}
    read_as = {position: column for column, position in taken.items()}
    names = Counter(fold(clean_header(h)) for h in header)
    unmatched: list[Unmatched] = []
    for position, raw in enumerate(header):
        name = clean_header(raw)
        if not fold(name):
            continue
        suggestion: str | None
        reason: str | None
        if position in unresolved:
            suggestion, reason = first_of.get(position), "repeated"
        elif names[fold(name)] > 1 and position in read_as:
            suggestion, reason = read_as[position], "repeated"
        elif position in read_as:
            continue
        else:
            suggestion, reason = _by_name(fold(name), free, aliases)
            if suggestion is None:
                values = [row[position] for row in samples if position < len(row)]
                suggestion, reason = _by_values(values, free, today)
            if suggestion is not None:
                free.remove(suggestion)
        unmatched.append(Unmatched(shown(name), position, suggestion, reason))
    return ColumnReport(
        header=[shown(clean_header(h)) for h in header],
        key=header_key(header),
        unmatched=unmatched,
        missing=[c for c in REQUIRED if c not in taken and c not in repeats],
        applied=applied,
    )


def _known_names(aliases: Mapping[str, str]) -> Iterable[tuple[str, str, str]]:
    """(folded name, canonical column, reason) for every name a suggestion may come from."""
    for name, column in aliases.items():
        if name.startswith(POSITION_MARK):  # a column by position, not a name
            continue
        yield name, column, "name"
    for preset in presets():
        for name, column in preset.aliases.items():
            yield name, column, f"preset:{preset.system}"


def _by_name(
    folded: str, free: Sequence[str], aliases: Mapping[str, str]
) -> tuple[str | None, str | None]:
    best: tuple[float, str, str] | None = None
    for name, column, reason in _known_names(aliases):
        if column not in free:
            continue
        if name == folded:
            return column, reason
        likeness = difflib.SequenceMatcher(None, folded, name).ratio()
        if likeness >= NAME_LIKENESS and (best is None or likeness > best[0]):
            best = (likeness, column, "name_likeness")
    return (best[1], best[2]) if best else (None, None)


def _by_values(
    values: Sequence[str], free: Sequence[str], today: date
) -> tuple[str | None, str | None]:
    present = [v.strip() for v in values if v and v.strip()]
    if not present:
        return None, None
    enough = VALUE_SHARE * len(present)
    if "identity" in free:
        identities = sum(not isinstance(parse_identity(v, today), IdentityError) for v in present)
        if identities >= enough:
            return "identity", "values"
    if "email" in free and sum(bool(_EMAIL.match(v)) for v in present) >= enough:
        return "email", "values"
    return None, None


Mapped = str | list[str | None] | None
"""What a header name is mapped to: a canonical column, None (not read) or, for a name the
header repeats, one of those for each of its columns in the header's order."""


@dataclass(frozen=True)
class Remembered:
    """The administrator's mapping for one header of the unit's files in one format."""

    columns: Mapping[str, Mapped]
    """Header name as written → canonical column, or None: the column is not read; a list
    for a name the header repeats (``Mapped``)."""
    org_sourced_id: str | None = None
    """OneRoster: the org whose students the unit takes."""


Mappings = Mapping[str, Remembered]
"""The unit's remembered mappings in one format, by header_key."""


def mapped_aliases(mapping: Remembered | None, header: Sequence[str]) -> dict[str, str]:
    """A remembered mapping as folded aliases ("" for a column not read) for this header; a
    name's list maps the header's columns of that name one by one, by position."""
    aliases: dict[str, str] = {}
    for name, column in (mapping.columns if mapping else {}).items():
        if isinstance(column, list):
            for position, each in zip(columns_named(header, name), column, strict=False):
                aliases[at_position(position)] = each or ""
        else:
            aliases[fold(clean_header(name))] = column or ""
    return aliases


def columns_named(header: Sequence[str], name: str) -> list[int]:
    """The positions of the header's columns whose name folds as ``name`` (as shown)."""
    folded = fold(clean_header(name))
    return [p for p, cell in enumerate(header) if fold(shown(clean_header(cell))) == folded]
