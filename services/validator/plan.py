"""The plan: what confirming would do, computed against the journal's current state.

The valid rows are staged and classified with the importer's own join
(nothing is written), so the plan is exactly what the importer will do
against the same journal state. With
*archive missing* the list of who would be archived is written next to the
report, for the administrator to see before anything happens.

The plan also decides, once, how the importer stages the rows
(``PlanResult.staging``, kept in the job's check result): a few are passed
as arrays, more are COPYed into the session's staging table at import time,
and many are staged here into a table of the job's own, which the plan
leaves for the importer: it then applies from it instead of staging the
report's rows a second time. Those
rows are COPYed while the file is still being checked (``JobRowsFeed``), so
PostgreSQL parses them on one core while the check runs on the other.
"""

from __future__ import annotations

import asyncio
import io
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rosterflow import events
from rosterflow.db import Connection
from rosterflow.events import ImportCounts
from rosterflow.jobs import Job, Staging, StagingPlan
from rosterflow.journal import arrays, encoding, job_tables, merge, staging
from rosterflow.journal.archive import archive_plan
from rosterflow.report import STAGED_COLUMNS
from rosterflow.runtime import Runtime
from rosterflow.storage import ObjectStore, archive_key
from services.validator import store
from services.validator.duplicates import Resolution
from services.validator.messages import RowCode

log = logging.getLogger(__name__)

# Batches of encoded rows waiting for their COPY: when PostgreSQL falls
# behind, the check waits rather than holding the file in memory.
_QUEUED = 8
_DONE = object()
_RESTART = object()
_CONFLICT = pa.scalar(RowCode.DUPLICATE_CONFLICT.value, pa.string())
_EXACT = pa.scalar(RowCode.DUPLICATE_EXACT.value, pa.string())
_Duplicates = tuple[list[str], list[str]]
_Item = io.BytesIO | _Duplicates | object


class JobRowsFeed:
    """A large job's valid rows COPYed into its own table while its file is checked.

    The report's writer hands it every batch of valid rows (from its thread).
    Until the batches reach ``imports.stage_once_rows`` rows they are only
    kept; from then on they are encoded and queued for a task that COPYs them
    into ``job_staging."<job id>"``, created in a transaction that stays open
    until the plan commits (``compute``). So the table is seen by nobody
    before it holds exactly the valid rows and their plan: a check that
    fails, is cancelled or whose process dies rolls it back with everything
    in it. A check that starts over (``ReportWriter.restart``) empties it; the
    duplicates found at the end are deleted from it as from the report.
    A small job never reaches the threshold and never touches the database here.
    """

    def __init__(self, rt: Runtime, job: Job) -> None:
        self._rt = rt
        self._job = job
        self._loop = asyncio.get_running_loop()
        self._threshold = rt.settings.imports.stage_once_rows
        self._held: list[pa.Table] = []
        self._held_rows = 0
        self._started = False
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(_QUEUED)
        self._task: asyncio.Task[None] | None = None
        self._stack = AsyncExitStack()
        self._conn: Connection | None = None
        self._closed = False  # the task ended: nothing more is taken
        self._aborted = False  # the check failed: nothing more is copied
        self._committed = False
        self.staged = 0  # rows in the table, as COPY and DELETE counted them

    # --- from the report's threads -------------------------------------------------

    def rows(self, valid: pa.Table) -> None:
        if self._started:
            self._send(encoding.staged_csv(valid))
            return
        self._held.append(valid)
        self._held_rows += valid.num_rows
        if self._held_rows >= self._threshold:
            self._started = True
            held, self._held = pa.concat_tables(self._held), []
            self._send(encoding.staged_csv(held))

    def restart(self) -> None:
        if self._started:
            self._send(_RESTART)
        self._held, self._held_rows = [], 0

    def resolved(self, resolution: Resolution) -> None:
        if not self._started:
            return
        codes = resolution.issues.column("code")
        identity = resolution.issues.column("identity_number")
        conflicting = pc.unique(identity.filter(pc.equal(codes, _CONFLICT))).to_pylist()
        copied = pc.unique(identity.filter(pc.equal(codes, _EXACT))).to_pylist()
        self._send(([str(i) for i in conflicting], [str(i) for i in copied]))

    def _send(self, item: _Item) -> None:
        asyncio.run_coroutine_threadsafe(self._put(item), self._loop).result()

    # --- on the event loop ----------------------------------------------------------

    async def _put(self, item: _Item) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        if not self._closed:
            await self._queue.put(item)

    async def _run(self) -> None:
        job = self._job
        try:
            conn = await self._stack.enter_async_context(self._rt.pool.acquire())
            # Before adding one, drop the tables nobody will read any more.
            kept = self._rt.settings.imports.staged_rows_kept_hours * 3600
            await job_tables.sweep_job_tables(conn, kept)
            await self._stack.enter_async_context(staging.staging(conn))
            await self._stack.enter_async_context(conn.transaction())
            await job_tables.create_job_table(conn, job.id)
            self._conn = conn
            while (item := await self._queue.get()) is not _DONE:
                if self._aborted or self._rt.cancellations.is_cancelled(job.id):
                    continue  # the check stops too, at its next chunk
                if item is _RESTART:
                    await job_tables.empty_job_table(conn, job.id)
                    self.staged = 0
                elif isinstance(item, io.BytesIO):
                    self.staged += await job_tables.copy_job_rows(conn, job.id, item)
                elif isinstance(item, tuple):
                    conflicting, copied = item
                    self.staged -= await job_tables.drop_job_duplicates(
                        conn, job.id, conflicting, copied
                    )
        finally:
            self._closed = True
            while not self._queue.empty():  # wakes a sender waiting for room
                self._queue.get_nowait()

    async def finish(self) -> Connection | None:
        """Every row sent is in the table: the connection, inside the table's
        transaction (None when the rows never reached the threshold)."""
        if self._task is None:
            return None
        await self._put(_DONE)
        await self._task  # raises what stopped it
        return self._conn

    async def commit(self) -> None:
        """The plan is done: the table becomes visible, complete."""
        self._committed = True
        await self._stack.aclose()

    async def __aenter__(self) -> JobRowsFeed:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Without a commit, the table and its rows are rolled back."""
        if self._committed:
            return
        self._aborted = True
        if self._task is not None:
            if not self._task.done():
                if isinstance(exc, asyncio.CancelledError):
                    self._task.cancel()
                else:
                    await self._put(_DONE)
            await asyncio.wait([self._task])
            if not self._task.cancelled():
                self._task.exception()  # seen: the check's own failure is the one raised
        await self._stack.__aexit__(exc_type or _NotCommitted, exc or _NotCommitted(), tb)


class _NotCommitted(Exception):
    """Leaving the feed without a commit rolls its transaction back."""


@dataclass(frozen=True)
class PlanResult:
    plan: events.Plan
    archive_candidates_key: str | None
    staging: StagingPlan


def _read_identities(objects: ObjectStore, keys: tuple[str, str]) -> list[pa.Array]:
    """Every identity number in the report, valid row or not: only the one column is read."""
    found = []
    for key in keys:
        column = objects.parquet_file(key).read(columns=["identity_number"]).column(0)
        found.append(column.combine_chunks())
    return found


async def compute(
    rt: Runtime,
    job: Job,
    valid_key: str,
    invalid_key: str,
    feed: JobRowsFeed | None = None,
) -> PlanResult:
    """The plan of the checked report; ``feed``: the rows it already staged."""
    parquet = await asyncio.to_thread(rt.store.parquet_file, valid_key)
    imports = rt.settings.imports
    conn = await feed.finish() if feed is not None else None
    if feed is not None and conn is not None:
        rows = feed.staged
        if rows != parquet.metadata.num_rows:
            # Never expected: the table must hold the report's rows exactly.
            log.warning(
                "the rows staged during the check differ from the report; staging it again",
                extra={"job_id": str(job.id), "staged": rows, "report": parquet.metadata.num_rows},
            )
            await job_tables.empty_job_table(conn, job.id)
            rows = await _stage(rt, conn, job, parquet, job_table=True)
        rt.cancellations.check(job.id)
        counts, archive, held, people = await _plan(
            rt, conn, job, job_tables.job_table(job.id), (valid_key, invalid_key)
        )
        await feed.commit()
        return await _result(rt, job, counts, archive, held, people, Staging.LARGE, rows)
    keep = parquet.metadata.num_rows >= imports.stage_once_rows
    if not keep and arrays.as_arrays(parquet.metadata.num_rows):
        return await _small(rt, job, parquet, (valid_key, invalid_key))
    # Committed, not rolled back: the plan writes nothing but the session's
    # staging tables, which the commit empties (``staging`` empties them when
    # anything fails), and, for a large job, the job's own table: created,
    # filled and analysed in this transaction, so it exists only complete.
    async with rt.pool.acquire() as conn:
        if keep:
            # Before adding one, drop the tables nobody will read any more.
            await job_tables.sweep_job_tables(conn, imports.staged_rows_kept_hours * 3600)
        async with staging.staging(conn), conn.transaction():
            staged = staging.STAGED
            if keep:
                staged = await job_tables.create_job_table(conn, job.id)
            rows = await _stage(rt, conn, job, parquet, job_table=keep)
            counts, archive, held, people = await _plan(
                rt, conn, job, staged, (valid_key, invalid_key)
            )
    size = Staging.LARGE if keep else Staging.NORMAL
    return await _result(rt, job, counts, archive, held, people, size, rows)


async def _small(
    rt: Runtime, job: Job, parquet: pq.ParquetFile, keys: tuple[str, str]
) -> PlanResult:
    """A small set's plan: classified from its rows passed as arrays, not staged.

    Without *archive missing* that is one read-only statement, outside any
    transaction; with it, the file's identity numbers still go through the
    session's ``file_identities``, in a transaction of the staging tables."""
    rows = await asyncio.to_thread(
        lambda: arrays.RowArrays.of(parquet.read(columns=list(STAGED_COLUMNS)))
    )
    rt.cancellations.check(job.id)
    async with rt.pool.acquire() as conn:
        if not job.archive_missing:
            counts, archive, held, people = await _plan(rt, conn, job, rows, keys)
        else:
            async with staging.staging(conn), conn.transaction():
                counts, archive, held, people = await _plan(rt, conn, job, rows, keys)
    size, total = Staging.SMALL, parquet.metadata.num_rows
    return await _result(rt, job, counts, archive, held, people, size, total)


async def _stage(
    rt: Runtime, conn: Connection, job: Job, parquet: pq.ParquetFile, *, job_table: bool
) -> int:
    return await staging.stage_row_groups(
        conn,
        parquet.num_row_groups,
        parquet.read_row_group,
        before=lambda: rt.cancellations.check(job.id),
        job_id=job.id if job_table else None,
    )


async def _plan(
    rt: Runtime, conn: Connection, job: Job, staged: arrays.Staged, keys: tuple[str, str]
) -> tuple[ImportCounts, int, bool, pa.Table | None]:
    """Inside the staging transaction (a small set: see ``_small``): the counts, the
    archive set's size, whether it is held, and who it takes (for the list next
    to the report)."""
    # Read-only: the plan is the importer's own classification, nothing is written.
    counts = await merge.classify_staged(
        conn,
        job.organisation_id,
        job.unit_id,
        job.school_year,
        staged,
        guardians_only=job.guardians_only,
    )
    if not job.archive_missing:
        return counts, 0, False, None
    identities = await asyncio.to_thread(_read_identities, rt.store, keys)
    await staging.stage_file_identities(conn, identities)
    archive_set = await archive_plan(
        conn,
        job.organisation_id,
        job.unit_id,
        rt.settings.imports.default_archive_hold_ratio,
        before_import=True,
        staged=staged,
    )
    people = await store.archive_people(conn, archive_set.patient_ids)
    return counts, len(archive_set.patient_ids), archive_set.held, people


async def _result(
    rt: Runtime,
    job: Job,
    counts: ImportCounts,
    archive: int,
    held: bool,
    people: pa.Table | None,
    size: Staging,
    rows: int,
) -> PlanResult:
    key = None
    if people is not None:
        key = archive_key(job.organisation_id, job.id)
        await asyncio.to_thread(rt.store.write_table, key, people)
    plan = events.Plan(
        create=counts.created,
        update=counts.updated,
        unchanged=counts.unchanged,
        reactivate=counts.reactivated,
        guardians_create=counts.guardians_created,
        guardians_update=counts.guardians_updated,
        guardians_unchanged=counts.guardians_unchanged,
        archive=archive,
        archive_held=held,
    )
    return PlanResult(plan, key, StagingPlan(size=size, rows=rows))
