"""Row rules for the canonical roster row, a batch (or a whole file) at a time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import reduce
from typing import Final, Literal, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from services.validator.identity import WHITESPACE, IdentityError, parse_identity_column

Severity = Literal["error", "warning"]
Lang = Literal["sv", "en"]

REQUIRED_COLUMNS: Final = ("identity", "given_name", "family_name", "grade", "class")
ISSUE_SCHEMA: Final = pa.schema(
    [("line", pa.int64()), ("column", pa.string()), ("code", pa.string()),
     ("severity", pa.string()), ("value", pa.string())]
)  # fmt: skip

# RE2 (Arrow) syntax. \s there is ASCII only, so Excel's no-break spaces are
# listed to be collapsed like ordinary ones.
_RUN_OF_SPACE = r"[\t\n\v\f\r \x{00A0}\x{2007}\x{202F}\x{FEFF}]+"
_UNTIDY_SPACE = r"  |[\t\n\v\f\r\x{00A0}\x{2007}\x{202F}\x{FEFF}]"
# Spreadsheets evaluate '=' cells, and '+', '-', '@' cells too when a function,
# a cell reference or a DDE pipe follows. Phone numbers ("+46 70 …") and
# hyphenated names must not trip it, so plain numbers after '+'/'-' do not.
_FORMULA_LIKE = (
    r"^(?:=\s*\S"
    r"|[-+@]\s*(?:[A-Za-z_][A-Za-z0-9_.]*\s*\(|\$?[A-Za-z]{1,3}\$?[0-9]+|=)"
    r"|[-+=@].*\|)"
)


class RowCode(StrEnum):
    GIVEN_NAME_MISSING = "given_name_missing"
    FAMILY_NAME_MISSING = "family_name_missing"
    CELL_FORMULA_LIKE = "cell_formula_like"
    IDENTITY_TEMPORARY = "identity_temporary"
    DUPLICATE_CONFLICT = "duplicate_conflict"
    DUPLICATE_EXACT = "duplicate_exact"


class Message(NamedTuple):
    severity: Severity
    sv: str
    en: str


MESSAGES: Final[Mapping[str, Message]] = {
    IdentityError.MISSING: Message(
        "error",
        "Personnummer saknas — fyll i personnumret.",
        "The identity number is missing — fill in the personal identity number.",
    ),
    IdentityError.FORMAT: Message(
        "error",
        "Personnumret har fel format — skriv det som ÅÅÅÅMMDD-NNNN eller ÅÅMMDD-NNNN.",
        "The identity number has the wrong format — write it as YYYYMMDD-NNNN or YYMMDD-NNNN.",
    ),
    IdentityError.EXCEL_MANGLED: Message(
        "error",
        "Personnumret verkar ha ändrats av Excel (siffror saknas eller det visas som ett tal) — "
        "formatera kolumnen som text och skriv in numret igen.",
        "The identity number looks changed by Excel (digits lost or shown as a number) — "
        "format the column as text and enter the number again.",
    ),
    IdentityError.BAD_DATE: Message(
        "error",
        "Personnumret innehåller ett datum som inte finns — kontrollera födelsedatumet.",
        "The identity number contains a date that does not exist — check the date of birth.",
    ),
    IdentityError.BAD_CHECK_DIGIT: Message(
        "error",
        "Personnumret har fel kontrollsiffra — kontrollera de sista fyra siffrorna.",
        "The identity number's check digit is wrong — check the last four digits.",
    ),
    IdentityError.BIRTH_NUMBER_000: Message(
        "error",
        "Födelsenumret i personnumret kan inte vara 000 — kontrollera de sista fyra siffrorna.",
        "The birth number in the identity number cannot be 000 — check the last four digits.",
    ),
    IdentityError.FUTURE: Message(
        "error",
        "Personnumret anger ett födelsedatum i framtiden — kontrollera år och sekelsiffror.",
        "The identity number gives a date of birth in the future — check the year and century.",
    ),
    RowCode.IDENTITY_TEMPORARY: Message(
        "warning",
        "Tillfälligt personnummer (reservnummer) — raden importeras, men numret är unikt bara "
        "inom organisationen. Byt till det riktiga personnumret när det finns.",
        "Temporary identity number — the row is imported, but the number is unique only within "
        "the organisation. Replace it with the real identity number when it is known.",
    ),
    RowCode.GIVEN_NAME_MISSING: Message(
        "error",
        "Förnamn saknas — fyll i förnamnet.",
        "The given name is missing — fill in the given name.",
    ),
    RowCode.FAMILY_NAME_MISSING: Message(
        "error",
        "Efternamn saknas — fyll i efternamnet.",
        "The family name is missing — fill in the family name.",
    ),
    RowCode.CELL_FORMULA_LIKE: Message(
        "warning",
        "Cellen börjar som en formel — den sparas som text och beräknas aldrig. "
        "Kontrollera att värdet är rätt.",
        "The cell starts like a spreadsheet formula — it is stored as text and never "
        "evaluated. Check that the value is correct.",
    ),
    RowCode.DUPLICATE_CONFLICT: Message(
        "error",
        "Personnumret finns på flera rader med olika uppgifter — ingen av dem importeras. "
        "Ta bort eller rätta dubbletterna.",
        "The identity number appears on several rows with different data — none of them is "
        "imported. Remove or correct the duplicates.",
    ),
    RowCode.DUPLICATE_EXACT: Message(
        "warning",
        "Raden är en exakt kopia av en tidigare rad — personen importeras bara en gång.",
        "The row is an exact copy of an earlier row — the person is imported only once.",
    ),
}


_CODES: Final = pa.array([str(code) for code in MESSAGES], pa.string())
_SEVERITIES: Final = pa.array([entry.severity for entry in MESSAGES.values()], pa.string())


def message(code: str, lang: Lang = "sv") -> str:
    entry = MESSAGES[code]
    return entry.sv if lang == "sv" else entry.en


@dataclass(frozen=True)
class RowIssue:
    line: int
    column: str
    code: str
    severity: Severity
    value: str | None


@dataclass(frozen=True)
class BatchResult:
    valid: pa.Table
    """line, identity (normalised), identity_kind, given_name, family_name, grade, class."""
    issues: pa.Table
    """ISSUE_SCHEMA, ordered by line."""
    empty_rows: int

    def issue_list(self) -> list[RowIssue]:
        return [RowIssue(**row) for row in self.issues.to_pylist()]


def clean_text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Trim, collapse inner whitespace to one space; blank becomes null."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    text = pc.utf8_trim(pc.cast(values, pa.string()), characters=WHITESPACE)
    # Replacing runs RE2's slow path on every value; matching first keeps it
    # to the few cells that need it (it was most of the cleaning time).
    untidy = pc.fill_null(pc.match_substring_regex(text, _UNTIDY_SPACE), False)
    tidied = pc.replace_substring_regex(text.filter(untidy), _RUN_OF_SPACE, " ")
    text = pc.replace_with_mask(text, untidy, tidied)
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _line_numbers(first_line: int | pa.Array, rows: int) -> pa.Array:
    if isinstance(first_line, int):
        return pa.arange(first_line, first_line + rows)
    if len(first_line) != rows:
        raise ValueError(f"{len(first_line)} line numbers for {rows} rows")
    return pc.cast(first_line, pa.int64())


def _issues(
    lines: pa.Array,
    mask: pa.Array,
    column: str,
    code: str | pa.Array,
    value: pa.Array | None = None,
) -> pa.Table:
    count = pc.sum(mask).as_py() or 0
    codes = pa.repeat(str(code), count) if isinstance(code, str) else code.filter(mask)
    return pa.Table.from_arrays(
        [
            lines.filter(mask),
            pa.repeat(column, count),
            codes,
            pc.take(_SEVERITIES, pc.index_in(codes, value_set=_CODES)),
            pa.nulls(count, pa.string()) if value is None else value.filter(mask),
        ],
        schema=ISSUE_SCHEMA,
    )


def validate_batch(
    batch: pa.Table | pa.RecordBatch,
    first_line: int | pa.Array,
    today: date,
    carry: Sequence[str] = (),
) -> BatchResult:
    """Check every row of a batch of string columns named as in REQUIRED_COLUMNS.

    ``first_line`` is the file line of the first row, or one line number per
    row when quoted newlines make them uneven. Columns named in ``carry`` are
    cleaned and appended to ``valid`` unchecked (contact data, for now).
    """
    absent = [name for name in (*REQUIRED_COLUMNS, *carry) if name not in batch.schema.names]
    if absent:
        raise ValueError(f"batch lacks columns {absent}")
    raw = {name: batch.column(name) for name in batch.schema.names}
    cleaned = {name: clean_text(column) for name, column in raw.items()}
    empty = reduce(pc.and_, (pc.is_null(column) for column in cleaned.values()))
    empty_rows = pc.sum(empty).as_py() or 0

    kept = pc.invert(empty)
    lines = _line_numbers(first_line, batch.num_rows).filter(kept)
    raw_identity = pc.cast(raw["identity"], pa.string()).filter(kept)
    cleaned = {name: column.filter(kept) for name, column in cleaned.items()}
    identity = parse_identity_column(raw_identity, today)

    given_missing = pc.is_null(cleaned["given_name"])
    family_missing = pc.is_null(cleaned["family_name"])
    temporary = pc.fill_null(pc.equal(identity.kinds, "temporary"), False)
    parts = [
        _issues(lines, pc.is_valid(identity.codes), "identity", identity.codes, raw_identity),
        _issues(lines, temporary, "identity", RowCode.IDENTITY_TEMPORARY, identity.normalised),
        _issues(lines, given_missing, "given_name", RowCode.GIVEN_NAME_MISSING),
        _issues(lines, family_missing, "family_name", RowCode.FAMILY_NAME_MISSING),
    ]
    for name, column in cleaned.items():
        if name != "identity":
            formula = pc.fill_null(pc.match_substring_regex(column, _FORMULA_LIKE), False)
            parts.append(_issues(lines, formula, name, RowCode.CELL_FORMULA_LIKE, column))
    issues = pa.concat_tables(parts)
    # A stable sort keeps each row's issues in the order they were found.
    issues = issues.take(pc.sort_indices(issues, [("line", "ascending")]))

    ok = pc.invert(pc.or_(pc.is_valid(identity.codes), pc.or_(given_missing, family_missing)))
    valid = pa.Table.from_arrays(
        [lines, identity.normalised, identity.kinds]
        + [cleaned[name] for name in ("given_name", "family_name", "grade", "class", *carry)],
        names=["line", "identity", "identity_kind", "given_name", "family_name", "grade",
               "class", *carry],
    ).filter(ok)  # fmt: skip
    return BatchResult(valid=valid, issues=issues, empty_rows=empty_rows)


@dataclass(frozen=True)
class Duplicates:
    conflict: pa.Array
    """True on every row whose identity number also appears with different data."""
    exact: pa.Array
    """True on the second and later copies of an identical row (import the first)."""


def row_fingerprint(valid: pa.Table, columns: Sequence[str] = ()) -> pa.Array:
    """What must be equal for two rows with one identity number to be exact duplicates."""
    names = ("given_name", "family_name", "grade", "class", *columns)
    # Joined with the unit separator, a control character nobody types in a
    # name, so ("Ann", "a") and ("Anna", "") cannot collide.
    return pc.binary_join_element_wise(
        *(pc.fill_null(valid.column(name), "") for name in names),
        "\x1f",
    )


def find_duplicates(identity: pa.Array, row_fingerprint: pa.Array) -> Duplicates:
    """Classify repeated identity numbers of a whole file; null identities never repeat."""
    if isinstance(identity, pa.ChunkedArray):
        identity = identity.combine_chunks()
    if isinstance(row_fingerprint, pa.ChunkedArray):
        row_fingerprint = row_fingerprint.combine_chunks()
    rows = pa.table(
        {"identity": identity, "fingerprint": row_fingerprint, "row": pa.arange(0, len(identity))}
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
    return Duplicates(conflict=conflict, exact=pc.fill_null(exact, False))


def duplicate_issues(lines: pa.Array, identity: pa.Array, duplicates: Duplicates) -> pa.Table:
    """Issue rows (ISSUE_SCHEMA) for what find_duplicates found, ordered by line."""
    issues = pa.concat_tables(
        [
            _issues(lines, duplicates.conflict, "identity", RowCode.DUPLICATE_CONFLICT, identity),
            _issues(lines, duplicates.exact, "identity", RowCode.DUPLICATE_EXACT, identity),
        ]
    )
    return issues.take(pc.sort_indices(issues, [("line", "ascending")]))
