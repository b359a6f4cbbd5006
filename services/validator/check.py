"""The check of one file: read it in chunks, apply the row rules, write the report as it goes."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rosterflow.events import CheckCounts, Detected, ImportRequest
from services.validator import errors, formats, guardian_file
from services.validator.duplicates import DuplicateTracker, partition_keys, resolve
from services.validator.header import Layout
from services.validator.identity import parse_identity_column
from services.validator.mapping import ColumnReport, Mappings
from services.validator.messages import MESSAGES, RowCode
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
_NOT_LISTED = pa.scalar(RowCode.ROW_ISSUES_NOT_LISTED.value, pa.string())
# What the report lists, so that its size and every page of it stay bounded
# whatever the file: the first issues of a row (errors first) and the first
# issues of the file. What is not listed is still counted.
MAX_ROW_ISSUES = 5
MAX_LISTED_ISSUES = 100_000
# Rows checked at once: a block of tiny rows would otherwise bring a hundred thousand
# of them, with their issues, into one chunk.
CHUNK_ROWS = 10_000


@dataclass(frozen=True)
class ChunkCounts:
    """What a chunk's issues count for, taken where the chunk is checked: the
    issues themselves (every one) are dropped there, not carried to the tally."""

    warnings: int
    invalid: int
    reasons: Counter[str]
    """Error issues by code."""
    skipped: Counter[str]
    """Invalid rows by their first error code."""


def count_issues(issues: pa.Table) -> ChunkCounts:
    """``issues`` in line order, a row's errors first."""
    errors_only = issues.filter(pc.equal(issues.column("severity"), _ERROR))
    warnings = issues.num_rows - errors_only.num_rows
    if not errors_only.num_rows:
        return ChunkCounts(warnings, 0, Counter(), Counter())
    codes = errors_only.column("code")
    # A row's first error is where its line starts.
    lines = errors_only.column("line").to_numpy()
    first = np.flatnonzero(np.r_[True, lines[1:] != lines[:-1]])
    return ChunkCounts(warnings, len(first), _counted(codes), _counted(codes.take(pa.array(first))))


def _counted(codes: pa.ChunkedArray) -> Counter[str]:
    return Counter({str(e["values"]): int(e["counts"]) for e in pc.value_counts(codes).to_pylist()})


@dataclass(frozen=True)
class ChunkChecked:
    result: BatchResult
    counts: ChunkCounts
    listed: pa.Table
    """What the report lists of the chunk's issues: at most MAX_ROW_ISSUES a row (errors
    first) and a note of how many more."""
    not_listed: int
    blank: int
    keys: list[pa.Array]
    """The identity keys for the duplicate check."""


log = logging.getLogger(__name__)


class Stopped(Exception):
    """The check was asked to stop (the job was cancelled)."""


@dataclass(frozen=True)
class Limits:
    max_rows: int
    max_bytes: int


@dataclass(frozen=True)
class Reason:
    """An error code and how many times rows had it, with its message in both languages."""

    code: str
    rows: int
    message_sv: str
    message_en: str


@dataclass(frozen=True)
class CheckResult:
    counts: CheckCounts
    detected: Detected
    reasons: list[Reason]
    """Every error code found, commonest first (ties by code)."""
    skipped: dict[str, int]
    """Invalid rows by their first error code."""
    columns: ColumnReport | None = None
    """The file's columns the format did not recognise, with suggestions."""


@dataclass
class _Tally:
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    empty: int = 0
    warnings: int = 0
    protected: int = 0
    listed: int = 0
    not_listed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, checked: ChunkChecked) -> None:
        self.valid += checked.result.valid.num_rows
        self.empty += checked.blank + checked.result.empty_rows
        self.warnings += checked.counts.warnings
        self.protected += checked.result.protected_rows
        self.invalid += checked.counts.invalid
        self.reasons.update(checked.counts.reasons)
        self.skipped.update(checked.counts.skipped)

    def listing(self, issues: pa.Table) -> pa.Table:
        """What of ``issues`` the report lists, within the file's cap."""
        room = max(MAX_LISTED_ISSUES - self.listed, 0)
        if issues.num_rows > room:
            self.not_listed += issues.num_rows - room
            issues = issues.slice(0, room)
        self.listed += issues.num_rows
        return issues

    def counts(self) -> CheckCounts:
        return CheckCounts(
            rows=self.rows,
            valid=self.valid,
            invalid=self.invalid,
            empty=self.empty,
            warnings=self.warnings,
            issues_not_listed=self.not_listed,
            protected_identities=self.protected,
        )

    def ranked(self) -> list[Reason]:
        ranked = sorted(self.reasons.items(), key=lambda pair: (-pair[1], pair[0]))
        return [
            Reason(code, rows, MESSAGES[code].sv, MESSAGES[code].en)
            for code, rows in ranked
            if code in MESSAGES
        ]


def check_file(
    upload: Upload,
    request: ImportRequest,
    rules: Rules,
    *,
    limits: Limits,
    report: ReportWriter,
    stop: Callable[[], bool],
    progress: Callable[[int], None] = lambda rows: None,
    mappings: Mappings | None = None,
) -> CheckResult:
    """Check a whole file into ``report``; ``progress`` hears the rows read so far,
    from the second chunk on (a file read in one chunk is checked before anyone
    could watch it, and recording its progress cost every small job a write).

    Raises FileError for a file-level problem and Stopped when ``stop`` says
    so between chunks; either way nothing of the report is left behind.
    """
    try:
        result = _check(upload, request, rules, limits, report, stop, progress, mappings)
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
    mappings: Mappings | None,
) -> CheckResult:
    if upload.size > limits.max_bytes:
        raise errors.too_large(upload.size, limits.max_bytes)
    with upload.open() as source:
        sample = source.read(SAMPLE_BYTES)
    opened = formats.open_roster(
        request.format, upload, sample, limits.max_rows, mappings, today=rules.today
    )
    reader, layout = opened.reader, opened.layout
    refused = formats.FORMATS[request.format].refuses(reader, request.options.archive_missing)
    if refused is not None:
        raise refused
    guardians = request.format.guardians_only
    try:
        tally, tracker = _read(reader, layout, rules, limits, report, stop, progress, guardians)
    except ReadAgain:
        report.restart()
        tally, tracker = _read(reader, layout, rules, limits, report, stop, progress, guardians)
    if stop():
        raise Stopped
    if tally.rows == tally.empty:
        raise errors.no_rows()
    if tally.not_listed:
        log.info("issues not listed", extra={"listed": tally.listed, "more": tally.not_listed})
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
        if conflict_count:
            # Rows dropped for a conflict were valid before: it is their first error.
            tally.reasons[RowCode.DUPLICATE_CONFLICT.value] += conflict_count
            tally.skipped[RowCode.DUPLICATE_CONFLICT.value] += conflict_count
    detected = Detected(
        encoding=reader.detected_encoding,
        header_line=reader.header_line,
        delimiter=reader.delimiter,
        format=request.format,
        columns=layout.columns,
    )
    return CheckResult(
        tally.counts(), detected, tally.ranked(), dict(tally.skipped), opened.columns
    )


def _read(
    reader: Reader,
    layout: Layout,
    rules: Rules,
    limits: Limits,
    report: ReportWriter,
    stop: Callable[[], bool],
    progress: Callable[[int], None],
    guardians: bool = False,
) -> tuple[_Tally, DuplicateTracker]:
    """Every chunk through the rules and into the report, in file order; a guardian
    file's rows are placed as their students' guardians (guardian_file.py).

    Chunks are checked on a small pool (pyarrow's kernels release the GIL)
    and written by one more thread, while this one reads; at most a few
    chunks are in hand at any time, so memory does not grow with the file.
    """
    tally = _Tally()
    tracker = DuplicateTracker()
    places = guardian_file.Places() if guardians else None
    checking: deque[Future[ChunkChecked]] = deque()
    writing: deque[Future[None]] = deque()

    def finish(done: Future[ChunkChecked]) -> None:
        checked = done.result()
        if places is not None:
            checked = _placed(checked, places)
        tally.not_listed += checked.not_listed
        listed = tally.listing(checked.listed)
        # The writer thread takes the writes in order; only a backlog waits.
        writing.append(_WRITING.submit(report.write, checked.result.valid, listed))
        while len(writing) > WORKERS:
            writing.popleft().result()
        tracker.add(checked.keys)
        tally.add(checked)

    try:
        for chunk in _parts(reader.chunks(layout)):
            if stop():
                raise Stopped
            tally.rows += chunk.count
            if tally.rows > limits.max_rows:
                raise errors.too_many_rows(limits.max_rows)
            if tally.rows > chunk.count:
                progress(tally.rows)
            checking.append(_CHECKING.submit(_check_chunk, chunk, layout.width, rules, guardians))
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


def _parts(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """Chunks of at most CHUNK_ROWS rows; a misshapen row goes with the rows around it."""
    for chunk in chunks:
        if chunk.rows.num_rows <= CHUNK_ROWS:
            yield chunk
            continue
        misshapen, blank = chunk.misshapen, chunk.blank
        for start in range(0, chunk.rows.num_rows, CHUNK_ROWS):
            rows = chunk.rows.slice(start, CHUNK_ROWS)
            lines = chunk.lines.slice(start, CHUNK_ROWS)
            if start + CHUNK_ROWS < chunk.rows.num_rows:
                before = pc.less_equal(misshapen.column("line"), lines[-1])
                mine, misshapen = misshapen.filter(before), misshapen.filter(pc.invert(before))
            else:
                mine = misshapen
            yield Chunk(rows, lines, blank=blank, misshapen=mine)
            blank = 0


def _check_chunk(chunk: Chunk, width: int, rules: Rules, guardians: bool = False) -> ChunkChecked:
    result = validate_batch(chunk.rows, chunk.lines, rules)
    if guardians:
        result = guardian_file.of_students(result, rules)
    issues = result.issues
    if chunk.misshapen.num_rows:
        issues = pa.concat_tables([issues, _misshapen_issues(chunk.misshapen, width, rules)])
    # Stable: on one line, errors ("error" < "warning") and then in the order found.
    issues = issues.take(
        pc.sort_indices(issues, [("line", "ascending"), ("severity", "ascending")])
    )
    listed, not_listed = _cap_per_row(issues)
    return ChunkChecked(
        BatchResult(result.valid, listed, result.empty_rows, result.protected_rows),
        count_issues(issues),
        listed,
        not_listed,
        chunk.blank,
        # A guardian file names a student on a row per guardian: Places tells them apart.
        partition_keys(result.valid.slice(0, 0) if guardians else result.valid),
    )


def _placed(checked: ChunkChecked, places: guardian_file.Places) -> ChunkChecked:
    """The chunk's valid rows placed as their students' guardians; the rows placing drops
    are counted and listed as the rules' issues are."""
    placed = places.place(checked.result.valid)
    protected = pc.sum(placed.valid.column("protected_identity")).as_py() or 0
    result = dataclasses.replace(checked.result, valid=placed.valid, protected_rows=protected)
    if not placed.issues.num_rows:
        return dataclasses.replace(checked, result=result)
    listed = pa.concat_tables([checked.listed, placed.issues])
    order = [("line", "ascending"), ("severity", "ascending")]
    listed = listed.take(pc.sort_indices(listed, order))
    made_invalid = sum(placed.errors.values())
    counts = ChunkCounts(
        checked.counts.warnings + placed.warnings,
        checked.counts.invalid + made_invalid,
        checked.counts.reasons + placed.errors,
        checked.counts.skipped + placed.errors,
    )
    return dataclasses.replace(
        checked,
        result=dataclasses.replace(result, issues=listed),
        counts=counts,
        listed=listed,
    )


def _cap_per_row(issues: pa.Table) -> tuple[pa.Table, int]:
    """The first MAX_ROW_ISSUES issues of each row, and a note on each row of how many more."""
    if issues.num_rows <= MAX_ROW_ISSUES:
        return issues, 0
    lines = issues.column("line").to_numpy()
    starts = np.flatnonzero(np.r_[True, lines[1:] != lines[:-1]])
    sizes = np.diff(np.r_[starts, len(lines)])
    rank = np.arange(len(lines)) - np.repeat(starts, sizes)
    over = sizes > MAX_ROW_ISSUES
    if not over.any():
        return issues, 0
    kept = issues.filter(pa.array(rank < MAX_ROW_ISSUES))
    more = sizes[over] - MAX_ROW_ISSUES
    firsts = issues.take(pa.array(starts[over]))
    count = len(more)
    notes = pa.Table.from_arrays(
        [firsts.column("line"), pa.repeat(pa.scalar("*", pa.string()), count),
         pa.repeat(_NOT_LISTED, count), pa.repeat(pa.scalar("warning", pa.string()), count),
         pa.array(more.astype(str).tolist(), pa.string()), firsts.column("identity_number")],
        schema=ISSUE_SCHEMA,
    )  # fmt: skip
    listed = pa.concat_tables([kept, notes])
    listed = listed.take(pc.sort_indices(listed, [("line", "ascending")]))
    return listed, int(more.sum())


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
