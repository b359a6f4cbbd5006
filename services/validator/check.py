"""The check of one file: read it in chunks, apply the row rules, write the report as it goes."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from rosterflow.events import CheckCounts, Detected, ImportRequest
from services.validator import errors, formats
from services.validator.duplicates import DuplicateTracker, partition_keys, resolve
from services.validator.header import Layout
from services.validator.identity import parse_identity_column
from services.validator.messages import RowCode
from services.validator.reading import SAMPLE_BYTES
from services.validator.report import ReportWriter
from services.validator.rows import ISSUE_SCHEMA, BatchResult, Rules, validate_batch
from services.validator.source import Chunk, ReadAgain, Reader, Upload

# Chunks checked at once: with the reading and the writing threads, enough to
# keep two cores busy; each chunk is a few MB of the file.
WORKERS = 2
# The threads are the process's, not each check's: starting and joining two or
# three threads for every file was 1-1.5 ms of CPU in a 200-row check. A check's
# writes stay in order (one writing thread takes them first come, first served).
_CHECKING = ThreadPoolExecutor(WORKERS, thread_name_prefix="check")
_WRITING = ThreadPoolExecutor(1, thread_name_prefix="report")

_ERROR = pa.scalar("error", pa.string())
# A chunk checked: the rules' result, every issue with the misshapen rows', the
# blank rows, the identity keys for the duplicate check.
ChunkChecked = tuple[BatchResult, pa.Table, int, list[pa.Array]]


class Stopped(Exception):
    """The check was asked to stop (the job was cancelled)."""


@dataclass(frozen=True)
class Limits:
    max_rows: int
    max_bytes: int


@dataclass(frozen=True)
class CheckResult:
    counts: CheckCounts
    detected: Detected


@dataclass
class _Tally:
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    empty: int = 0
    warnings: int = 0

    def add(self, result: BatchResult, issues: pa.Table, blank: int) -> None:
        errors_only = issues.filter(pc.equal(issues.column("severity"), _ERROR))
        self.valid += result.valid.num_rows
        self.invalid += pc.count_distinct(errors_only.column("line")).as_py()
        self.empty += blank + result.empty_rows
        self.warnings += issues.num_rows - errors_only.num_rows

    def counts(self) -> CheckCounts:
        return CheckCounts(
            rows=self.rows,
            valid=self.valid,
            invalid=self.invalid,
            empty=self.empty,
            warnings=self.warnings,
        )


def check_file(
    upload: Upload,
    request: ImportRequest,
    rules: Rules,
    *,
    limits: Limits,
    report: ReportWriter,
    stop: Callable[[], bool],
    progress: Callable[[int], None] = lambda rows: None,
) -> CheckResult:
    """Check a whole file into ``report``; ``progress`` hears the rows read so far,
    from the second chunk on (a file read in one chunk is checked before anyone
    could watch it, and recording its progress cost every small job a write).

    Raises FileError for a file-level problem and Stopped when ``stop`` says
    so between chunks; either way nothing of the report is left behind.
    """
    try:
        result = _check(upload, request, rules, limits, report, stop, progress)
    except BaseException:
        report.discard()
        raise
    return result


def _check(
    upload: Upload,
    request: ImportRequest,
    rules: Rules,
    limits: Limits,
    report: ReportWriter,
    stop: Callable[[], bool],
    progress: Callable[[int], None],
) -> CheckResult:
    if upload.size > limits.max_bytes:
        raise errors.too_large(upload.size, limits.max_bytes)
    with upload.open() as source:
        sample = source.read(SAMPLE_BYTES)
    reader, layout = formats.open_roster(request.format, upload, sample, limits.max_rows)
    try:
        tally, tracker = _read(reader, layout, rules, limits, report, stop, progress)
    except ReadAgain:
        report.restart()
        tally, tracker = _read(reader, layout, rules, limits, report, stop, progress)
    if stop():
        raise Stopped
    if tally.rows == tally.empty:
        raise errors.no_rows()
    report.close()
    repeated = tracker.repeated()
    if len(repeated):
        resolution = resolve(report.valid_parts(), repeated)
        report.apply(resolution)
        conflicts = pc.equal(
            resolution.issues.column("code"),
            pa.scalar(RowCode.DUPLICATE_CONFLICT.value, pa.string()),
        )
        conflict_count = pc.sum(conflicts).as_py() or 0
        tally.valid -= len(resolution.dropped)
        tally.invalid += conflict_count
        tally.warnings += resolution.issues.num_rows - conflict_count
    detected = Detected(
        encoding=reader.encoding,
        delimiter=reader.delimiter,
        format=request.format,
        columns=layout.columns,
    )
    return CheckResult(tally.counts(), detected)


def _read(
    reader: Reader,
    layout: Layout,
    rules: Rules,
    limits: Limits,
    report: ReportWriter,
    stop: Callable[[], bool],
    progress: Callable[[int], None],
) -> tuple[_Tally, DuplicateTracker]:
    """Every chunk through the rules and into the report, in file order.

    Chunks are checked on a small pool (pyarrow's kernels release the GIL)
    and written by one more thread, while this one reads; at most a few
    chunks are in hand at any time, so memory does not grow with the file.
    """
    tally = _Tally()
    tracker = DuplicateTracker()
    checking: deque[Future[ChunkChecked]] = deque()
    writing: deque[Future[None]] = deque()

    def finish(done: Future[ChunkChecked]) -> None:
        result, issues, blank, keys = done.result()
        # The writer thread takes the writes in order; only a backlog waits.
        writing.append(_WRITING.submit(report.write, result.valid, issues))
        while len(writing) > WORKERS:
            writing.popleft().result()
        tracker.add(keys)
        tally.add(result, issues, blank)

    try:
        for chunk in reader.chunks(layout):
            if stop():
                raise Stopped
            tally.rows += chunk.count
            if tally.rows > limits.max_rows:
                raise errors.too_many_rows(limits.max_rows)
            if tally.rows > chunk.count:
                progress(tally.rows)
            checking.append(_CHECKING.submit(_check_chunk, chunk, layout.width, rules))
            while len(checking) > WORKERS:
                finish(checking.popleft())
        while checking:
            finish(checking.popleft())
        while writing:
            writing.popleft().result()
    except BaseException:
        pending: list[Future[Any]] = [*checking, *writing]
        for future in pending:
            future.cancel()
        # What already runs finishes before the caller discards the report.
        wait(pending)
        raise
    return tally, tracker


def _check_chunk(chunk: Chunk, width: int, rules: Rules) -> ChunkChecked:
    result = validate_batch(chunk.rows, chunk.lines, rules)
    issues = result.issues
    if chunk.misshapen.num_rows:
        issues = pa.concat_tables([issues, _misshapen_issues(chunk.misshapen, width, rules)])
        issues = issues.take(pc.sort_indices(issues, [("line", "ascending")]))
    return result, issues, chunk.blank, partition_keys(result.valid)


def _misshapen_issues(misshapen: pa.Table, width: int, rules: Rules) -> pa.Table:
    """Rows that could not be read: an error each, with the identity number where it reads."""
    count = misshapen.num_rows
    identity = parse_identity_column(misshapen.column("identity"), rules.today)
    shape = pc.binary_join_element_wise(
        pc.cast(misshapen.column("fields"), pa.string()),
        pa.scalar(f"{width} fields", pa.string()),
        pa.scalar(" of ", pa.string()),
    )
    return pa.Table.from_arrays(
        [misshapen.column("line"), pa.repeat(pa.scalar("*", pa.string()), count),
         pa.repeat(pa.scalar(RowCode.ROW_COLUMN_COUNT.value, pa.string()), count),
         pa.repeat(_ERROR, count), shape, identity.normalised],
        schema=ISSUE_SCHEMA,
    )  # fmt: skip
