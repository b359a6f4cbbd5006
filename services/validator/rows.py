"""Row rules for the canonical roster row, a batch at a time, a column at a time."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import reduce
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from rosterflow.report import VALID_ROWS_SCHEMA
from services.validator import grades
from services.validator.contact import CHECKS
from services.validator.grades import SchoolLevel
from services.validator.header import (
    CANONICAL,
    CONTACT,
    GUARDIAN_FIELDS,
    GUARDIAN_PREFIXES,
    REQUIRED,
)
from services.validator.identity import (
    WHITESPACE,
    IdentityColumn,
    IdentityError,
    parse_identity_column,
)
from services.validator.messages import RowCode, Severity, severities
from services.validator.protected import Marks

ISSUE_SCHEMA: Final = pa.schema(
    [("line", pa.int64()), ("column", pa.string()), ("code", pa.string()),
     ("severity", pa.string()), ("value", pa.string()), ("identity_number", pa.string())]
)  # fmt: skip

# RE2 (Arrow) syntax. \s there is ASCII only, so Excel's no-break spaces are
# listed to be collapsed like ordinary ones.
_RUN_OF_SPACE = r"[\t\n\v\f\r \x{00A0}\x{2007}\x{202F}\x{FEFF}]+"
_UNTIDY_SPACE = r"  |[\t\n\v\f\r\x{00A0}\x{2007}\x{202F}\x{FEFF}]"
# A spreadsheet runs a cell starting with '=', '+', '-' or '@' as a formula
# (a tab or a line break before it is trimmed away, so the trimmed value is
# judged). Only what it would read as a plain number is not one: a negative
# number ("-", "-1,5") and a phone number ("+46 70-123 45 67"). "-1+1" and
# "-1+HYPERLINK(…)" are formulas.
_NOT_FORMULA = r"^(?:-[0-9 .,]*|\+[0-9 ()-]*)$"
# Control characters no roster text holds; NUL would stop PostgreSQL.
# Tab, line breaks, vertical tab and form feed are whitespace (clean_text).
_CONTROL = r"[\x00-\x08\x0e-\x1f\x7f]"
_REPLACEMENT = pa.scalar("\ufffd", pa.string())
_GRADE_ERRORS = pa.array(
    [RowCode.GRADE_INVALID.value, RowCode.GRADE_NOT_ALLOWED.value], pa.string()
)
# Literals go to pyarrow typed (see identity._n).
_NULL = pa.scalar(None, pa.string())
_ZERO = pa.scalar(0, pa.int32())
_FALSE = pa.scalar(False, pa.bool_())
_TEMPORARY = pa.scalar("temporary", pa.string())
_IDENTITY_MISSING = pa.scalar(IdentityError.MISSING.value, pa.string())
# What a protected identity keeps out of the journal: the student's contact
# data and their guardians' (names and identity numbers stay).
WITHHELD = (
    *CONTACT,
    *(p + f for p in GUARDIAN_PREFIXES for f in GUARDIAN_FIELDS if f in CONTACT),
)


@dataclass(frozen=True)
class Rules:
    """What the rules depend on besides the row: the day, the unit's level, the job's option."""

    today: date
    level: SchoolLevel = "unspecified"
    upper_secondary: bool = False
    students: pa.Array | None = None
    """A guardian file's: the identity numbers of the unit's active students."""
    protected_students: pa.Array | None = None
    """A guardian file's: those of them the journal marks protected (the file has no mark)."""


@dataclass(frozen=True)
class RowIssue:
    line: int
    column: str
    code: str
    severity: Severity
    value: str | None
    identity_number: str | None = None


@dataclass(frozen=True)
class BatchResult:
    valid: pa.Table
    """VALID_ROWS_SCHEMA: normalised, ready to stage."""
    issues: pa.Table
    """ISSUE_SCHEMA, ordered by line."""
    empty_rows: int
    protected_rows: int = 0
    """Valid rows of students with a protected identity, imported without contact data."""

    def issue_list(self) -> list[RowIssue]:
        return [RowIssue(**row) for row in self.issues.to_pylist()]


# Bytes that only the special spaces bring: the last byte of a no-break space
# (U+00A0) and the first byte of U+2007, U+202F and U+FEFF. A literal search
# is fast; a character class is ten times slower.
_SPECIAL_SPACE = [re.compile(re.escape(byte)) for byte in (b"\xa0", b"\xe2", b"\xef")]
_DOUBLE_SPACE = re.compile(b"  ")
_NO_BYTES = np.zeros(0, np.uint8)
_ASCII_WHITESPACE = " \t\n\r\f\v"
_FORMULA_START = np.zeros(256, np.bool_)
_FORMULA_START[list(b"=+-@")] = True
_FORMULA_FIRST = pa.array([b"=", b"+", b"-", b"@"], pa.binary())


class _Bytes:
    """What bytes a string column's buffer holds, read in place (no copy).

    A min or max over the buffer (numpy, vectorised) answers most columns at
    once: no byte below 0x20 means no control whitespace, none above 0x7f no
    special space. The searches that remain are literal ones by Python's re,
    which reads the buffer where it is (copying it out first cost as much as
    the search, and every fresh temporary of its size faults its pages in).
    """

    def __init__(self, values: pa.Array) -> None:
        data = values.buffers()[2]
        empty = data is None or data.size == 0
        self._view: memoryview | bytes = b"" if empty else memoryview(data)
        self._bytes: npt.NDArray[np.uint8] = _NO_BYTES if empty else np.frombuffer(data, np.uint8)

    def special_space(self) -> bool:
        if not len(self._bytes) or self._bytes.max() < 0x80:
            return False
        return any(pattern.search(self._view) for pattern in _SPECIAL_SPACE)

    def control(self) -> bool:
        return bool(len(self._bytes)) and bool(self._bytes.min() < 0x20)

    def double_space(self) -> bool:
        return _DOUBLE_SPACE.search(self._view) is not None

    def first_bytes(self, values: pa.Array) -> npt.NDArray[np.uint8]:
        """Each value's first byte (for an empty value, the next one's: a harmless yes)."""
        if not len(self._bytes):
            return _NO_BYTES
        offsets = np.frombuffer(values.buffers()[1], np.int32)
        starts = offsets[values.offset : values.offset + len(values)]
        first: npt.NDArray[np.uint8] = self._bytes[np.minimum(starts, len(self._bytes) - 1)]
        return first


def clean_text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Trim, collapse inner whitespace to one space; blank becomes null."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count == len(values):
        return pa.nulls(len(values), pa.string())
    values = pc.cast(values, pa.string())
    # A look at the column's buffer says which work is needed: it can say
    # yes for bytes outside the array's slice or of another character, never
    # no for a value that needs it; a yes only means the exact work runs.
    seen = _Bytes(values)
    special = seen.special_space()
    if special:
        text = pc.utf8_trim(values, characters=WHITESPACE)
    else:
        # ASCII bytes never occur inside a UTF-8 multi-byte character.
        text = pc.ascii_trim(values, characters=_ASCII_WHITESPACE)
    # Replacing runs RE2's slow path on every value, and even matching costs
    # 100 ns a value; most columns have no untidy space at all.
    if special or seen.control() or seen.double_space():
        untidy = pc.fill_null(pc.match_substring_regex(text, _UNTIDY_SPACE), False)
        if pc.any(untidy).as_py():
            tidied = pc.replace_substring_regex(text.filter(untidy), _RUN_OF_SPACE, " ")
            text = pc.replace_with_mask(text, untidy, tidied)
    blank = pc.equal(pc.binary_length(text), _ZERO)
    if pc.any(blank).as_py():
        text = pc.if_else(blank, _NULL, text)
    return text


def formula_like(values: pa.Array) -> pa.Array:
    if not _FORMULA_START[_Bytes(values).first_bytes(values)].any():
        return pa.repeat(_FALSE, len(values))
    # The full pattern runs only on cells starting like a formula (few, if any).
    first = pc.binary_slice(values.view(pa.binary()), 0, 1)
    candidates = pc.fill_null(pc.is_in(first, value_set=_FORMULA_FIRST), False)
    if not pc.any(candidates).as_py():
        return candidates
    plain = pc.match_substring_regex(values.filter(candidates), _NOT_FORMULA)
    return pc.replace_with_mask(candidates, candidates, pc.invert(plain))


def control_characters(values: pa.Array) -> pa.Array | None:
    """Which values hold a control character; None (the common case) when none does."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not _Bytes(values).control():
        return None
    found = pc.fill_null(pc.match_substring_regex(values, _CONTROL), False)
    return found if pc.any(found).as_py() else None


def _line_numbers(first_line: int | pa.Array, rows: int) -> pa.Array:
    if isinstance(first_line, int):
        return pa.arange(first_line, first_line + rows)
    if len(first_line) != rows:
        raise ValueError(f"{len(first_line)} line numbers for {rows} rows")
    return pc.cast(first_line, pa.int64())


class _Found:
    """Issue parts of one batch, each an Arrow table in ISSUE_SCHEMA."""

    def __init__(self, lines: pa.Array, identity_number: pa.Array) -> None:
        self.lines = lines
        self.identity_number = identity_number
        self.parts: list[pa.Table] = []

    def add(
        self, mask: pa.Array, column: str, code: str | pa.Array, value: pa.Array | None = None
    ) -> None:
        count = pc.sum(mask).as_py() or 0
        if not count:
            return
        if isinstance(code, str):
            codes = pa.repeat(pa.scalar(str(code), pa.string()), count)
        else:
            codes = code.filter(mask)
        self.parts.append(
            pa.Table.from_arrays(
                [
                    self.lines.filter(mask),
                    pa.repeat(pa.scalar(column, pa.string()), count),
                    codes,
                    severities(codes),
                    pa.nulls(count, pa.string()) if value is None else value.filter(mask),
                    self.identity_number.filter(mask),
                ],
                schema=ISSUE_SCHEMA,
            )
        )

    def table(self) -> pa.Table:
        if not self.parts:
            return ISSUE_SCHEMA.empty_table()
        issues = pa.concat_tables(self.parts)
        # A stable sort keeps each row's issues in the order they were found.
        return issues.take(pc.sort_indices(issues, [("line", "ascending")]))


def validate_batch(
    batch: pa.Table | pa.RecordBatch, first_line: int | pa.Array, rules: Rules
) -> BatchResult:
    """Check every row of a batch of string columns named as in header.CANONICAL.

    ``first_line`` is the file line of the first row, or one line number per
    row when quoted newlines or blank lines make them uneven. Absent optional
    columns count as empty; without a grade or a class column no grade is
    looked for.
    """
    absent = [name for name in REQUIRED if name not in batch.schema.names]
    if absent:
        raise ValueError(f"batch lacks columns {absent}")
    rows = batch.num_rows
    present = [name for name in CANONICAL if name in batch.schema.names]
    raw = {name: batch.column(name) for name in present}
    # Absent optional columns are empty: one array of nulls for all of them,
    # and no rule runs on it (a template without guardians pays nothing for them).
    nothing = pa.nulls(rows, pa.string())
    cleaned = {
        name: clean_text(raw[name]) if name in raw else nothing
        for name in CANONICAL
        if name != "identity"
    }
    raw_identity = pc.cast(raw["identity"], pa.string())
    control = {
        name: found
        for name in present
        if (found := control_characters(pc.cast(raw[name], pa.string()))) is not None
    }
    identity = parse_identity_column(raw_identity, rules.today)
    no_identity = pc.fill_null(pc.equal(identity.codes, _IDENTITY_MISSING), False)
    empty = reduce(
        pc.and_, (pc.is_null(cleaned[name]) for name in present if name != "identity"), no_identity
    )
    empty_rows = pc.sum(empty).as_py() or 0

    lines = _line_numbers(first_line, rows)
    if empty_rows:
        kept = pc.invert(empty)
        lines, raw_identity = lines.filter(kept), raw_identity.filter(kept)
        nothing = nothing.slice(0, len(lines))
        cleaned = {
            name: column.filter(kept) if name in raw else nothing
            for name, column in cleaned.items()
        }
        identity = IdentityColumn(*(column.filter(kept) for column in identity))
        control = {name: found.filter(kept) for name, found in control.items()}
    marks = Marks(cleaned["protected"])
    if rules.protected_students is not None and len(rules.protected_students):
        marks.protected = pc.or_(
            marks.protected,
            pc.is_in(identity.normalised, value_set=rules.protected_students),
        )
    protected_rows = pc.sum(marks.protected).as_py() or 0
    if protected_rows:
        # Before any rule: a protected student's contact data is in no issue either.
        public = pc.invert(marks.protected)
        for name in WITHHELD:
            if name in raw:
                cleaned[name] = pc.if_else(public, cleaned[name], _NULL)
                if name in control:
                    control[name] = pc.and_(control[name], public)
    found = _Found(lines, identity.normalised)
    for name, mask in control.items():
        # The report shows where the character was, never the character itself.
        shown = raw_identity if name == "identity" else cleaned[name]
        found.add(mask, name, RowCode.CELL_CONTROL_CHARACTER,
                  pc.replace_substring_regex(shown, _CONTROL, _REPLACEMENT.as_py()))  # fmt: skip
    found.add(marks.unclear, "protected", RowCode.PROTECTED_IDENTITY_UNCLEAR, cleaned["protected"])

    given_missing = pc.is_null(cleaned["given_name"])
    family_missing = pc.is_null(cleaned["family_name"])
    temporary = pc.fill_null(pc.equal(identity.kinds, _TEMPORARY), False)
    found.add(pc.is_valid(identity.codes), "identity", identity.codes, raw_identity)
    found.add(temporary, "identity", RowCode.IDENTITY_TEMPORARY, identity.normalised)
    found.add(given_missing, "given_name", RowCode.GIVEN_NAME_MISSING)
    found.add(family_missing, "family_name", RowCode.FAMILY_NAME_MISSING)
    for name in present:
        if name != "identity":
            found.add(formula_like(cleaned[name]), name, RowCode.CELL_FORMULA_LIKE, cleaned[name])

    if "grade" in batch.schema.names or "class" in batch.schema.names:
        placement = grades.place(
            cleaned["grade"],
            cleaned["class"],
            level=rules.level,
            upper_secondary=rules.upper_secondary,
        )
        found.add(pc.is_valid(placement.codes), "grade", placement.codes, cleaned["grade"])
    else:
        # A file without grades at all (a clinic's patient list) is not a
        # warning on every row; the check result shows the columns it found.
        placement = grades.Placement(
            *(pa.nulls(len(lines), kind) for kind in (pa.string(), pa.int16(), pa.string()))
        )
    contact = dict(cleaned)
    for name, (check, code) in CHECKS.items():
        if name in raw:
            checked = check(cleaned[name])
            found.add(checked.invalid, name, code, cleaned[name])
            contact[name] = checked.values
    guardian_identities = {}
    for prefix in GUARDIAN_PREFIXES:
        column = prefix + "identity"
        guardian_identities[prefix] = nothing
        if column in raw:
            parsed = parse_identity_column(cleaned[column], rules.today)
            # Where given: a guardian without an identity number is still a guardian.
            wrong = pc.fill_null(pc.not_equal(parsed.codes, _IDENTITY_MISSING), False)
            found.add(wrong, column, RowCode.GUARDIAN_IDENTITY_INVALID, cleaned[column])
            guardian_identities[prefix] = parsed.normalised

    grade_error = pc.fill_null(pc.is_in(placement.codes, value_set=_GRADE_ERRORS), False)
    error = reduce(
        pc.or_,
        (pc.is_valid(identity.codes), given_missing, family_missing, grade_error,
         *control.values()),
    )  # fmt: skip
    valid = pa.Table.from_arrays(
        [lines, identity.normalised, identity.kinds, cleaned["given_name"],
         cleaned["family_name"], placement.school_form, placement.grade_year, cleaned["class"],
         *(contact[name] for name in CONTACT), marks.protected,
         *(column
           for prefix in GUARDIAN_PREFIXES
           for column in (contact[prefix + "name"], guardian_identities[prefix],
                          *(contact[prefix + name] for name in CONTACT)))],
        schema=VALID_ROWS_SCHEMA,
    )  # fmt: skip
    if pc.any(error).as_py():
        valid = valid.filter(pc.invert(error))
    if protected_rows:
        protected_rows -= pc.sum(pc.and_(marks.protected, error)).as_py() or 0
    return BatchResult(
        valid=valid, issues=found.table(), empty_rows=empty_rows, protected_rows=protected_rows
    )
