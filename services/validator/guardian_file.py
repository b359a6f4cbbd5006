"""A guardian file's rows made guardians of the unit's students.

A guardian file (``FileFormat.guardians_only``) has a row a guardian, keyed by
the student's identity number; its format reads the guardian into the first
guardian's columns and the guardian's names into the name columns, so the
row rules run on it as on any roster row. The file has no mark of a
protected identity: the journal's is its students' (``Rules.protected_students``),
so a protected student's guardian's contact data is dropped before any rule
sees it, as the template's is. Then, a chunk at a time:

* ``of_students`` (on the checking threads): a row whose student is not an
  active patient of the unit, as the journal is when the file is checked, is
  an error (``guardian_student_unknown``); the guardian's names become the
  guardian's name, and the row names no student (their names stay as stored).
* ``Places`` (in file order, on the reading thread): the first guardian of a
  student in the file is their guardian 1, the next another one is guardian 2
  (its data moved to the second guardian's columns). A later row naming one
  of them again (by identity number, else by name) is an exact copy
  (``duplicate_exact``, dropped) or a conflict (``guardian_conflict``); a
  third guardian is an error (``guardians_too_many``): the first two stand.

So the valid rows are up to two a student, each naming one of their
guardians; the importer joins them into the student's guardians
(``rosterflow.journal.merge``). ``Places`` keeps, for the whole file, each
student's guardians' keys and data: a guardian file is a few rows a student.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import pyarrow as pa
import pyarrow.compute as pc

from rosterflow.report import GUARDIAN_FIELDS
from services.validator.duplicates import row_fingerprint
from services.validator.messages import RowCode, severities
from services.validator.rows import ISSUE_SCHEMA, BatchResult, Rules

_FIRST = tuple(f"guardian1_{name}" for name in GUARDIAN_FIELDS)
_SECOND = tuple(f"guardian2_{name}" for name in GUARDIAN_FIELDS)
_NO_NAME = pa.scalar(None, pa.string())
_SPACE = pa.scalar(" ", pa.string())


def of_students(result: BatchResult, rules: Rules) -> BatchResult:
    """The chunk's valid rows as guardians of known students, and an error on the others."""
    valid = result.valid
    students = rules.students if rules.students is not None else pa.array([], pa.string())
    known = pc.is_in(valid.column("identity_number"), value_set=students)
    unknown = pc.invert(known)
    issues = result.issues
    if pc.any(unknown).as_py():
        found = valid.filter(unknown)
        issues = _concat(
            issues,
            _issues(found, RowCode.GUARDIAN_STUDENT_UNKNOWN, found.column("identity_number")),
        )
        valid = valid.filter(known)
    name = pc.binary_join_element_wise(
        valid.column("given_name"), valid.column("family_name"), _SPACE
    )
    nobody = pa.nulls(valid.num_rows, pa.string())
    valid = _set(valid, {"guardian1_name": name, "given_name": nobody, "family_name": nobody})
    return replace(result, valid=valid, issues=issues)


@dataclass(frozen=True)
class Placed:
    valid: pa.Table
    issues: pa.Table
    """ISSUE_SCHEMA, by line: the rows dropped from ``valid``."""
    warnings: int
    errors: Counter[str]
    """Rows made invalid, by code (it is each one's first error: they were valid)."""


class Places:
    """Each student's guardians in the file so far: their key and their data."""

    def __init__(self) -> None:
        self._seen: dict[str, list[tuple[str, str]]] = {}

    def place(self, valid: pa.Table) -> Placed:
        """The chunk's valid rows (the file's next, in line order) as guardian 1 or 2."""
        fingerprints = row_fingerprint(valid, _FIRST).to_pylist()
        identities = valid.column("identity_number").to_pylist()
        guardians = valid.column("guardian1_identity_number").to_pylist()
        names = valid.column("guardian1_name").to_pylist()
        keep, second, codes = [], [], []
        for student, guardian, name, data in zip(
            identities, guardians, names, fingerprints, strict=True
        ):
            seen = self._seen.setdefault(student, [])
            key = f"id:{guardian}" if guardian else f"name:{str(name).casefold()}"
            before = next((stored for k, stored in seen if k == key), None)
            if before is not None:
                code = RowCode.DUPLICATE_EXACT if before == data else RowCode.GUARDIAN_CONFLICT
            elif len(seen) == 2:
                code = RowCode.GUARDIANS_TOO_MANY
            else:
                code = None
                seen.append((key, data))
            keep.append(code is None)
            second.append(code is None and len(seen) == 2)
            codes.append(code)
        kept = pa.array(keep, pa.bool_())
        dropped = valid.filter(pc.invert(kept))
        dropped_codes = pa.array([c.value for c in codes if c is not None], pa.string())
        issues = _issues(dropped, dropped_codes, dropped.column("identity_number"))
        moved = pa.array(second, pa.bool_())
        if any(second):
            columns = {}
            for first, other in zip(_FIRST, _SECOND, strict=True):
                columns[other] = pc.if_else(moved, valid.column(first), _NO_NAME)
                columns[first] = pc.if_else(moved, _NO_NAME, valid.column(first))
            valid = _set(valid, columns)
        exact = RowCode.DUPLICATE_EXACT.value
        made_invalid = Counter(c.value for c in codes if c is not None and c.value != exact)
        return Placed(
            valid.filter(kept),
            issues,
            warnings=sum(c is not None and c.value == exact for c in codes),
            errors=made_invalid,
        )


def _issues(rows: pa.Table, code: str | pa.Array, value: pa.Array) -> pa.Table:
    count = rows.num_rows
    codes = pa.repeat(pa.scalar(str(code), pa.string()), count) if isinstance(code, str) else code
    identity = rows.column("identity_number")
    return pa.Table.from_arrays(
        [rows.column("line"), pa.repeat(pa.scalar("identity", pa.string()), count), codes,
         severities(codes), value, identity],
        schema=ISSUE_SCHEMA,
    )  # fmt: skip


def _concat(issues: pa.Table, more: pa.Table) -> pa.Table:
    merged = pa.concat_tables([issues, more])
    return merged.take(pc.sort_indices(merged, [("line", "ascending")]))


def _set(table: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
    for name, values in columns.items():
        table = table.set_column(table.schema.get_field_index(name), name, values)
    return table
