"""check_file run on bytes in memory, its report read back, for the validator's unit tests."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from uuid import UUID

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from rosterflow.events import CheckCounts, Detected, FileFormat, ImportOptions, ImportRequest
from rosterflow.storage import ObjectStore
from rosterflow.testing import school_age_numbers
from services.validator.check import Limits, check_file
from services.validator.grades import SchoolLevel
from services.validator.mapping import Mappings
from services.validator.report import ReportWriter
from services.validator.rows import Rules
from services.validator.source import Upload

TODAY = date(2026, 3, 15)
NUMBERS = school_age_numbers()
HEADER = "Personnummer;Förnamn;Efternamn;Årskurs;Klass"
VALID_KEY, INVALID_KEY = "report/valid.parquet", "report/invalid.parquet"


@dataclass(frozen=True)
class Checked:
    """What check_file said and what it wrote, read back from the Parquet report."""

    counts: CheckCounts
    detected: Detected
    valid: pa.Table
    issues: pa.Table
    row_groups: int


def request(
    fmt: FileFormat = FileFormat.ROSTERFLOW_CSV, *, upper_secondary: bool = False
) -> ImportRequest:
    return ImportRequest(
        organisation_id=UUID(int=1),
        unit_id=UUID(int=2),
        school_year="2025/2026",
        format=fmt,
        options=ImportOptions(treat_as_upper_secondary=upper_secondary),
    )


def run_check(
    data: bytes,
    *,
    fmt: FileFormat = FileFormat.ROSTERFLOW_CSV,
    level: SchoolLevel = "compulsory",
    upper_secondary: bool = False,
    max_rows: int = 1000,
    max_bytes: int = 10_000_000,
    stop: Callable[[], bool] = lambda: False,
    store_dir: Path | None = None,
    progress: Callable[[int], None] = lambda rows: None,
    mappings: Mappings | None = None,
    students: Sequence[str] | None = None,
    protected_students: Sequence[str] = (),
) -> Checked:
    """check_file on in-memory bytes, the report written to a local object store;
    ``students``: a guardian file's unit's active students (``protected_students``
    of them marked protected in the journal)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = ObjectStore(pafs.LocalFileSystem(), str(store_dir or tmp))
        result = check_file(
            Upload(lambda: pa.BufferReader(data), len(data)),
            request(fmt, upper_secondary=upper_secondary),
            Rules(
                today=TODAY,
                level=level,
                upper_secondary=upper_secondary,
                students=None if students is None else pa.array(students, pa.string()),
                protected_students=pa.array(protected_students, pa.string()),
            ),
            limits=Limits(max_rows=max_rows, max_bytes=max_bytes),
            report=ReportWriter(store, VALID_KEY, INVALID_KEY),
            stop=stop,
            progress=progress,
            mappings=mappings,
        )
        valid = store.parquet_file(VALID_KEY)
        return Checked(
            result.counts,
            result.detected,
            valid.read(),
            store.parquet_file(INVALID_KEY).read(),
            valid.num_row_groups,
        )


def csv(*rows: str, header: str = HEADER) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode("cp1252")


def issues_by_line(result: Checked) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for issue in result.issues.to_pylist():
        found.setdefault(issue["line"], []).append(issue["code"])
    return found


def valid_identities(result: Checked) -> list[str]:
    return [str(v) for v in result.valid.column("identity_number").to_pylist()]


def report_identities(result: Checked) -> set[str]:
    """Every identity number the report holds, valid row or not (what archiving spares)."""
    found = pa.chunked_array(
        [result.valid.column("identity_number"), result.issues.column("identity_number")]
    )
    return {str(v) for v in pc.drop_null(found).to_pylist()}
