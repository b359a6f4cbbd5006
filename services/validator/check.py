"""The check of one file: read it in batches, apply the row rules, build the report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from rosterflow.events import CheckCounts, Detected, ImportRequest
from rosterflow.journal import VALID_ROWS_SCHEMA
from services.validator import grades
from services.validator.identity import Identity, parse_identity, parse_identity_column
from services.validator.reading import (
    SAMPLE_BYTES,
    FileError,
    Layout,
    detect_layout,
    read_batches,
    with_all_columns,
)
from services.validator.records import LooseRow, scan_records
from services.validator.rows import (
    ISSUE_SCHEMA,
    duplicate_issues,
    find_duplicates,
    message,
    row_fingerprint,
    validate_batch,
)

CONTACT = ("email", "phone")

# The report's issue rows: what rows.ISSUE_SCHEMA holds, plus the row's
# identity number where it could be read (so a typo elsewhere in the row never
# gets that patient archived) and the message in both languages.
_LOCATED_SCHEMA = ISSUE_SCHEMA.append(pa.field("identity_number", pa.string()))
REPORT_SCHEMA = _LOCATED_SCHEMA.append(pa.field("message_sv", pa.string())).append(
    pa.field("message_en", pa.string())
)

MISSHAPEN = "row_column_count"
MISSHAPEN_MESSAGES = {
    "sv": "Raden har ett annat antal kolumner än rubrikraden och kunde inte läsas.",
    "en": "The row has a different number of columns than the header row and was not read.",
}


@dataclass(frozen=True)
class CheckResult:
    valid: pa.Table  # journal.VALID_ROWS_SCHEMA
    issues: pa.Table  # REPORT_SCHEMA
    counts: CheckCounts
    detected: Detected

    def file_identities(self) -> list[str]:
        """Every identity number read from the file, valid row or not."""
        found = pa.chunked_array(
            [self.valid.column("identity_number"), self.issues.column("identity_number")]
        )
        return [str(v) for v in pc.unique(pc.drop_null(found)).to_pylist()]


def _with_identity(issues: pa.Table, lines: pa.Array, normalised: pa.Array) -> pa.Table:
    position = pc.index_in(issues.column("line"), value_set=lines)
    return issues.append_column("identity_number", pc.take(normalised, position))


def _with_messages(issues: pa.Table) -> pa.Table:
    codes = issues.column("code").to_pylist()
    for lang in ("sv", "en"):
        issues = issues.append_column(
            f"message_{lang}",
            pa.array(
                [MISSHAPEN_MESSAGES[lang] if c == MISSHAPEN else message(c, lang) for c in codes],
                pa.string(),
            ),
        )
    return issues


OpenSource = Callable[[], pa.NativeFile]


def check_file(
    open_source: OpenSource,
    request: ImportRequest,
    *,
    today: date,
    max_rows: int,
    stop: Callable[[], bool],
) -> CheckResult:
    """Check a whole file; raises FileError for a file-level problem, Stopped on stop.

    ``open_source`` opens the file anew: it is read twice, once to find where
    every record starts (records.scan_records), once in batches by pyarrow.
    """
    with open_source() as source:
        layout = detect_layout(source.read(SAMPLE_BYTES))
    with open_source() as source:
        scan = scan_records(source, layout, max_rows)
    valid_parts: list[pa.Table] = []
    issue_parts: list[pa.Table] = []
    empty = scan.empty
    delivered = 0

    def check_batch(batch: pa.RecordBatch, lines: pa.Array) -> None:
        nonlocal empty
        result = validate_batch(batch, lines, today, carry=CONTACT)
        parsed = parse_identity_column(batch.column("identity"), today)
        issue_parts.append(_with_identity(result.issues, lines, parsed.normalised))
        valid_parts.append(result.valid)
        empty += result.empty_rows

    with open_source() as source:
        for batch in read_batches(source, layout):
            if stop():
                raise Stopped
            check_batch(batch, scan.lines(delivered, batch.num_rows))
            delivered += batch.num_rows
    if delivered != len(scan.good_lines):
        raise FileError(
            "file_unreadable",
            "The file's quoting could not be read consistently; check for unbalanced quotes.",
        )
    if scan.rescued:
        check_batch(
            _as_batch([row.fields for row in scan.rescued], layout),
            pa.array([row.line for row in scan.rescued], pa.int64()),
        )
    if scan.misshapen:
        issue_parts.append(_misshapen_issues(scan.misshapen, layout, today))

    valid = _empty_valid() if not valid_parts else pa.concat_tables(valid_parts)
    duplicates = find_duplicates(valid.column("identity"), row_fingerprint(valid, CONTACT))
    issue_parts.append(
        _with_identity(
            duplicate_issues(valid.column("line"), valid.column("identity"), duplicates),
            valid.column("line").combine_chunks(),
            valid.column("identity").combine_chunks(),
        )
    )
    valid = valid.filter(pc.invert(pc.or_(duplicates.conflict, duplicates.exact)))
    valid = valid.take(pc.sort_indices(valid, [("line", "ascending")]))
    issues = _with_messages(pa.concat_tables([p.cast(_LOCATED_SCHEMA) for p in issue_parts]))
    issues = issues.take(pc.sort_indices(issues, [("line", "ascending")]))
    errors = issues.filter(pc.equal(issues.column("severity"), "error"))
    counts = CheckCounts(
        rows=scan.rows,
        valid=valid.num_rows,
        invalid=len(pc.unique(errors.column("line"))),
        empty=empty,
        warnings=issues.num_rows - errors.num_rows,
    )
    detected = Detected(
        encoding=layout.encoding,
        delimiter=layout.delimiter,
        format=request.format,
        columns=layout.columns,
    )
    return CheckResult(_to_journal_rows(valid, request), issues, counts, detected)


def _as_batch(rows: list[list[str]], layout: Layout) -> pa.RecordBatch:
    columns = {
        name: pa.array([row[i] for row in rows], pa.string())
        for i, name in enumerate(layout.names)
        if not name.startswith("_unused_")
    }
    return with_all_columns(pa.RecordBatch.from_pydict(columns))


def _misshapen_issues(rows: list[LooseRow], layout: Layout, today: date) -> pa.Table:
    position = layout.names.index("identity")
    identities = []
    for row in rows:
        parsed = parse_identity(row.fields[position], today) if len(row.fields) > position else None
        identities.append(parsed.normalised if isinstance(parsed, Identity) else None)
    width = len(layout.names)
    return pa.table(
        {
            "line": pa.array([row.line for row in rows], pa.int64()),
            "column": pa.array(["*"] * len(rows)),
            "code": pa.array([MISSHAPEN] * len(rows)),
            "severity": pa.array(["error"] * len(rows)),
            "value": pa.array([f"{len(row.fields)} of {width} fields" for row in rows]),
            "identity_number": pa.array(identities, pa.string()),
        }
    )


class Stopped(Exception):
    """The check was asked to stop (the job was cancelled)."""


def _empty_valid() -> pa.Table:
    names = [
        "line",
        "identity",
        "identity_kind",
        "given_name",
        "family_name",
        "grade",
        "class",
        *CONTACT,
    ]
    return pa.table({n: pa.array([], pa.int64() if n == "line" else pa.string()) for n in names})


def _to_journal_rows(valid: pa.Table, request: ImportRequest) -> pa.Table:
    school_form, grade_year = grades.school_placement(
        valid.column("grade"),
        valid.column("class"),
        upper_secondary=request.options.treat_as_upper_secondary,
    )
    return pa.Table.from_arrays(
        [
            valid.column("line"),
            valid.column("identity"),
            valid.column("identity_kind"),
            valid.column("given_name"),
            valid.column("family_name"),
            school_form,
            grade_year,
            valid.column("class"),
            valid.column("email"),
            valid.column("phone"),
        ],
        schema=VALID_ROWS_SCHEMA,
    )
