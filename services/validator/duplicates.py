"""Duplicates within a file: the same identity number on several rows.

With different data it is an error on every such row (none is imported); an
exact copy imports once, with a warning on the later copies.

Rows stream through the check a batch at a time, so duplicates across batches
are found at the end. For the whole file only each valid row's identity
number is kept, as an integer (8 bytes a row). Only when some number repeats
are the written valid rows read back, and only the rows of repeated numbers
get a fingerprint (a hash of their normalised data, kept with the line) to
tell exact copies from conflicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from rosterflow.report import VALID_ROWS_SCHEMA
from services.validator.messages import RowCode, severities
from services.validator.rows import ISSUE_SCHEMA

# Everything a valid row holds but its line and identity number (the kind follows from it).
FINGERPRINT_COLUMNS = tuple(
    name
    for name in VALID_ROWS_SCHEMA.names
    if name not in ("line", "identity_number", "identity_kind")
)


@dataclass(frozen=True)
class Duplicates:
    conflict: pa.Array
    """True on every row whose identity number also appears with different data."""
    exact: pa.Array
    """True on the second and later copies of an identical row (import the first)."""


def row_fingerprint(valid: pa.Table, columns: Sequence[str] = FINGERPRINT_COLUMNS) -> pa.Array:
    """What must be equal for two rows with one identity number to be exact duplicates."""
    # Joined with the unit separator, a control character nobody types in a
    # name, so ("Ann", "a") and ("Anna", "") cannot collide.
    return pc.binary_join_element_wise(
        *(pc.fill_null(pc.cast(valid.column(name), pa.string()), "") for name in columns),
        pa.scalar("\x1f", pa.string()),
    )


def find_duplicates(identity: pa.Array, fingerprint: pa.Array) -> Duplicates:
    """Classify repeated identity numbers; rows in file order, null identities never repeat."""
    if isinstance(identity, pa.ChunkedArray):
        identity = identity.combine_chunks()
    if isinstance(fingerprint, pa.ChunkedArray):
        fingerprint = fingerprint.combine_chunks()
    rows = pa.table(
        {"identity": identity, "fingerprint": fingerprint, "row": pa.arange(0, len(identity))}
    )
    known = pc.is_valid(identity)
    variants = rows.group_by("identity").aggregate(
        [("fingerprint", "count_distinct", pc.CountOptions(mode="all"))]
    )
    conflicting = variants.filter(pc.greater(variants["fingerprint_count_distinct"], 1))
    conflict = pc.and_(known, pc.is_in(identity, value_set=conflicting["identity"]))
    firsts = rows.group_by(["identity", "fingerprint"]).aggregate([("row", "min")])
    later = pc.invert(pc.is_in(rows["row"], value_set=firsts["row_min"]))
    exact = pc.and_(known, pc.and_(later, pc.invert(conflict)))
    return Duplicates(conflict=pc.fill_null(conflict, False), exact=pc.fill_null(exact, False))


def duplicate_issues(lines: pa.Array, identity: pa.Array, duplicates: Duplicates) -> pa.Table:
    """Issue rows (ISSUE_SCHEMA) for what find_duplicates found, ordered by line."""
    parts = []
    for mask, code in (
        (duplicates.conflict, RowCode.DUPLICATE_CONFLICT),
        (duplicates.exact, RowCode.DUPLICATE_EXACT),
    ):
        count = pc.sum(mask).as_py() or 0
        codes = pa.repeat(pa.scalar(code.value, pa.string()), count)
        found = identity.filter(mask)
        parts.append(
            pa.Table.from_arrays(
                [
                    lines.filter(mask),
                    pa.repeat(pa.scalar("identity", pa.string()), count),
                    codes,
                    severities(codes),
                    found,
                    found,
                ],
                schema=ISSUE_SCHEMA,
            )
        )
    issues = pa.concat_tables(parts)
    return issues.take(pc.sort_indices(issues, [("line", "ascending")]))


_TEMPORARY_MARK = pa.scalar(b"T", pa.binary())
_TEMPORARY_BASE = pa.scalar(10**12, pa.int64())


def identity_key(identity: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A normalised identity number as an int64: 12 digits, or date and TF digits above 10^12.

    Hashing and grouping integers is many times faster than 12-character strings.
    """
    if isinstance(identity, pa.ChunkedArray):
        identity = identity.combine_chunks()
    binary = identity.view(pa.binary())
    temporary = pc.fill_null(pc.equal(pc.binary_slice(binary, 8, 9), _TEMPORARY_MARK), False)
    if not pc.any(temporary).as_py():
        return pc.cast(identity, pa.int64())
    digits = pc.binary_join_element_wise(
        pc.binary_slice(binary, 0, 8), pc.binary_slice(binary, 10, 12), b""
    ).view(pa.string())
    keys = pc.cast(pc.if_else(temporary, digits, identity), pa.int64())
    return pc.add(keys, pc.if_else(temporary, _TEMPORARY_BASE, pa.scalar(0, pa.int64())))


# Keys are kept in this many parts by their low bits: a hash table of one
# part stays in the CPU cache, and the parts' repeats cost half of one table's.
_PARTS = 16
_PART_MASK = pa.scalar(_PARTS - 1, pa.int64())
_PART_IDS = [pa.scalar(part, pa.int64()) for part in range(_PARTS)]


def partition_keys(valid: pa.Table) -> list[pa.Array]:
    """The identity keys of a batch's valid rows, split as DuplicateTracker keeps them."""
    keys = identity_key(valid.column("identity_number"))
    part = pc.bit_wise_and(keys, _PART_MASK)
    return [keys.filter(pc.equal(part, part_id)) for part_id in _PART_IDS]


class DuplicateTracker:
    """The identity number of every valid row of a file, to find repeats at its end."""

    def __init__(self) -> None:
        self._parts: list[list[pa.Array]] = [[] for _ in range(_PARTS)]

    def add(self, parts: list[pa.Array]) -> None:
        """One batch's keys as partition_keys splits them (on a worker thread)."""
        for kept, keys in zip(self._parts, parts, strict=True):
            kept.append(keys)

    def repeated(self) -> pa.Array:
        """Identity keys (identity_key) on more than one valid row."""
        found = [pa.array([], pa.int64())]
        for kept in self._parts:
            keys = pa.chunked_array(kept, pa.int64())
            # Usually every number is there once: hashing the keys once shows it.
            if len(pc.unique(keys)) == len(keys):
                continue
            counts = pa.table({"key": keys}).group_by("key").aggregate([("key", "count")])
            repeated = counts.filter(pc.greater(counts["key_count"], pa.scalar(1, pa.int64())))
            found.append(repeated.column("key").combine_chunks())
        return pa.concat_arrays(found)


@dataclass(frozen=True)
class Resolution:
    dropped: pa.Array
    """Lines of valid rows not to import (conflicts, later exact copies)."""
    issues: pa.Table
    """ISSUE_SCHEMA, ordered by line."""


def resolve(valid_parts: Iterable[pa.Table], repeated: pa.Array) -> Resolution:
    """Read the valid rows again, fingerprint the rows of repeated identities, classify them."""
    identity, line, fingerprint = [], [], []
    for part in valid_parts:
        mine = part.filter(
            pc.is_in(identity_key(part.column("identity_number")), value_set=repeated)
        )
        if not mine.num_rows:
            continue
        identity.append(mine.column("identity_number").combine_chunks())
        line.append(mine.column("line").combine_chunks())
        # A 64-bit hash per row, comparable within this process, is all that
        # is kept: two rows of one person differing only by a hash collision
        # is a chance of about 1 in 10^19.
        texts = row_fingerprint(mine).to_pylist()
        fingerprint.append(pa.array([hash(text) for text in texts], pa.int64()))
    if not identity:
        return Resolution(pa.array([], pa.int64()), ISSUE_SCHEMA.empty_table())
    identities = pa.concat_arrays(identity)
    lines = pa.concat_arrays(line)
    # Rows in file order, so that the first of exact copies is the one imported.
    order = pc.sort_indices(lines)
    identities, lines = identities.take(order), lines.take(order)
    found = find_duplicates(identities, pa.concat_arrays(fingerprint).take(order))
    return Resolution(
        lines.filter(pc.or_(found.conflict, found.exact)),
        duplicate_issues(lines, identities, found),
    )
