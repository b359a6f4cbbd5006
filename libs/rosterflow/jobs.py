"""The job state machine in PostgreSQL, the only writer of the jobs table and its audit.

Every transition is a compare-and-set (``UPDATE … WHERE state = ANY($expected)``)
recorded in job_transitions, so a redelivered event or a second instance can
never run a step twice: whoever loses the race sees zero rows and knows the
job has moved on. The event that follows a state (``following``) is written
into the outbox in the transition's transaction (``rosterflow.outbox``); the
relay publishes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rosterflow import db, events, outbox
from rosterflow.db import Connection
from rosterflow.ops import metrics


class JobState(StrEnum):
    RECEIVED = "received"
    VALIDATING = "validating"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    IMPORTING = "importing"
    ARCHIVING = "archiving"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    REJECTED = "rejected"


TERMINAL = frozenset({JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED, JobState.REJECTED})
ACTIVE = frozenset(JobState) - TERMINAL

NEXT: dict[JobState, frozenset[JobState]] = {
    JobState.RECEIVED: frozenset({JobState.VALIDATING, JobState.REJECTED}),
    JobState.VALIDATING: frozenset({JobState.AWAITING_CONFIRMATION}),
    JobState.AWAITING_CONFIRMATION: frozenset({JobState.IMPORTING}),
    JobState.IMPORTING: frozenset({JobState.ARCHIVING}),
    JobState.ARCHIVING: frozenset({JobState.COMPLETED}),
}
for _state in ACTIVE:
    NEXT[_state] = NEXT.get(_state, frozenset()) | {JobState.CANCELLED, JobState.FAILED}

OUTCOME_STATE = {
    events.Outcome.COMPLETED: JobState.COMPLETED,
    events.Outcome.FAILED: JobState.FAILED,
    events.Outcome.CANCELLED: JobState.CANCELLED,
    events.Outcome.REJECTED: JobState.REJECTED,
}

# Columns a transition may set besides the state; anything else is a bug.
_SETTABLE = frozenset(
    {
        "validation_started_at",
        "validation_finished_at",
        "confirmed_at",
        "import_started_at",
        "import_finished_at",
        "archived_at",
        "finished_at",
        "check_result",
        "column_mapping",
        "import_counts",
        "archived_count",
        "error_code",
        "error_message",
    }
)


class IllegalTransition(Exception):
    pass


class Staging(StrEnum):
    """How the importer gets a job's valid rows into PostgreSQL, decided once by the plan."""

    SMALL = "small"
    """Few rows: passed as one array per column to a single statement (``journal.arrays``)."""
    NORMAL = "normal"
    """The report's rows COPYed into the session's staging table at import time."""
    LARGE = "large"
    """The plan left the rows in an UNLOGGED table of the job's own (``journal.job_tables``)."""


class StagingPlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    size: Staging
    rows: int = Field(ge=0, description="Valid rows to apply; for LARGE, the rows its table holds")


class Reason(BaseModel):
    """An error code and how many rows it stopped, with its message in both languages."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    rows: int = Field(ge=0)
    message_sv: str = ""
    message_en: str = ""


class CheckResult(BaseModel):
    """What the validator found and planned, kept with the job.

    The published part is exactly ``JobValidated``'s; the commonest reasons
    (for the email) and the staging decision (for the importer and whoever
    ends the job) stay with the job.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    counts: events.CheckCounts
    plan: events.Plan
    detected: events.Detected
    report: events.Report
    reasons: list[Reason] = Field(default_factory=list, description="Commonest first")
    staging: StagingPlan

    @model_validator(mode="before")
    @classmethod
    def _stored_before_staging_was_typed(cls, data: Any) -> Any:
        # Jobs checked before the decision had a field of its own carry an
        # optional ``staged_rows`` (the plan's own table) instead: still
        # importable, and by the same route.
        if isinstance(data, dict) and "staging" not in data:
            data = dict(data)
            staged = data.pop("staged_rows", None)
            if staged is not None:
                data["staging"] = {"size": Staging.LARGE, "rows": staged}
            else:
                valid = (data.get("counts") or {}).get("valid", 0)
                data["staging"] = {"size": Staging.NORMAL, "rows": valid}
        return data

    def validated(self, job_id: UUID) -> events.JobValidated:
        event = events.JobValidated.for_job(
            job_id, counts=self.counts, plan=self.plan, detected=self.detected, report=self.report
        )
        assert isinstance(event, events.JobValidated)
        return event


class Job(BaseModel):
    id: UUID
    organisation_id: UUID
    unit_id: UUID
    school_year: str
    format: str
    archive_missing: bool
    treat_as_upper_secondary: bool
    file_key: str
    file_name: str
    file_sha256: str
    file_size_bytes: int
    requested_by_id: str
    requested_by_name: str
    requested_by_email: str
    requested_by_language: str
    state: JobState
    cancel_requested_at: datetime | None
    received_at: datetime
    validation_started_at: datetime | None
    validation_finished_at: datetime | None
    confirmed_at: datetime | None
    import_started_at: datetime | None
    import_finished_at: datetime | None
    archived_at: datetime | None
    finished_at: datetime | None
    check_result: CheckResult | None
    import_counts: dict[str, int] | None
    archived_count: int | None
    archive_held_at: datetime | None = None
    archive_decision: str | None = None
    archive_decided_by: str | None = None
    archive_decided_at: datetime | None = None
    archive_undone_at: datetime | None = None
    archive_undone_count: int | None = None
    error_code: str | None
    error_message: str | None
    progress_stage: str | None = None
    progress_done: int | None = None
    progress_total: int | None = None
    superseded_by: UUID | None = None
    column_mapping: dict[str, Any] | None = None
    """The file's header, its columns the format did not map with suggestions, and the
    required ones missing (services/validator/mapping.py), for the administrator's
    mapping: set by the check, whether it passed or failed on the header."""

    @property
    def guardians_only(self) -> bool:
        """A guardian file's job: it writes the students' guardians and nothing else."""
        return events.FileFormat(self.format).guardians_only

    @property
    def request(self) -> events.ImportRequest:
        return events.ImportRequest(
            organisation_id=self.organisation_id,
            unit_id=self.unit_id,
            school_year=self.school_year,
            format=events.FileFormat(self.format),
            options=events.ImportOptions(
                archive_missing=self.archive_missing,
                treat_as_upper_secondary=self.treat_as_upper_secondary,
            ),
        )

    @property
    def file(self) -> events.StoredFile:
        return events.StoredFile(
            key=self.file_key,
            name=self.file_name,
            sha256=self.file_sha256,
            size_bytes=self.file_size_bytes,
        )

    @property
    def has_job_table(self) -> bool:
        """Its plan left the valid rows in a table of the job's own (``Staging.LARGE``)."""
        return self.check_result is not None and self.check_result.staging.size is Staging.LARGE

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def awaiting_archive_decision(self) -> bool:
        """Held: the job waits in *archiving* for an administrator, nothing runs."""
        return (
            self.state is JobState.ARCHIVING
            and self.archive_held_at is not None
            and self.archive_decision is None
        )

    def finished_event(self) -> events.JobFinished:
        """The JobFinished this (terminal) job published, rebuilt for re-publication."""
        outcome = next(o for o, s in OUTCOME_STATE.items() if s is self.state)
        imported = (
            events.ImportCounts.model_validate(self.import_counts) if self.import_counts else None
        )
        event = events.JobFinished.for_job(
            self.id,
            outcome=outcome,
            imported=imported,
            archived=self.archived_count or 0,
            error_code=self.error_code,
            error_message=self.error_message,
        )
        assert isinstance(event, events.JobFinished)
        return event


# The job, its first audit row and its JobAccepted in one statement (a
# data-modifying CTE): no transaction around them, one round trip. Nothing
# comes back for a known id.
INSERT_JOB = """
WITH job AS (
    INSERT INTO jobs (id, organisation_id, unit_id, school_year, format, archive_missing,
                      treat_as_upper_secondary, file_key, file_name, file_sha256,
                      file_size_bytes, requested_by_id, requested_by_name, requested_by_email,
                      requested_by_language)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
    ON CONFLICT (id) DO NOTHING
    RETURNING *),
audit AS (
    INSERT INTO job_transitions (job_id, from_state, to_state, cause)
    SELECT id, NULL, 'received', $16 FROM job),
accepted AS (
    INSERT INTO outbox (event_id, job_id, kind, payload, claimed_until)
    SELECT $17, id, $18, $19::jsonb, clock_timestamp() + make_interval(secs => $20)
      FROM job WHERE $17::uuid IS NOT NULL)
SELECT * FROM job
"""

INSERT_TRANSITION = """
INSERT INTO job_transitions (job_id, from_state, to_state, cause) VALUES ($1, $2, $3, $4)
"""

# The typed fields of a state that change without leaving it. Each is a
# compare-and-set too: it changes once, in the state it belongs to.
START_IMPORT = """
UPDATE jobs SET import_started_at = coalesce(import_started_at, now()), updated_at = now()
 WHERE id = $1 AND state = 'importing'
"""

HOLD_ARCHIVE = """
UPDATE jobs SET archive_held_at = now(), updated_at = now()
 WHERE id = $1 AND state = 'archiving' AND archive_held_at IS NULL
RETURNING *
"""

# A decision is taken once, on a held job nobody has cancelled.
DECIDE_ARCHIVE = """
UPDATE jobs SET archive_decision = $2, archive_decided_by = $3, archive_decided_at = now(),
                updated_at = now()
 WHERE id = $1 AND state = 'archiving' AND archive_held_at IS NOT NULL
   AND archive_decision IS NULL AND cancel_requested_at IS NULL
RETURNING *
"""

# Undo is for a completed job that archived someone, once; the row lock makes
# two undo requests at once resolve to one.
CLAIM_UNDO = """
SELECT true FROM jobs
 WHERE id = $1 AND state = 'completed' AND archived_count > 0 AND archive_undone_at IS NULL
 FOR UPDATE
"""

RECORD_UNDO = """
UPDATE jobs SET archive_undone_at = now(), archive_undone_count = $2, updated_at = now()
 WHERE id = $1 AND state = 'completed' AND archive_undone_at IS NULL
RETURNING *
"""

SUPERSEDE = """
UPDATE jobs SET superseded_by = $2, updated_at = now()
 WHERE id = $1 AND superseded_by IS NULL
"""

# An earlier job of the same unit and school year that still awaits confirmation.
SUPERSEDED_BY = """
SELECT id FROM jobs
 WHERE unit_id = $1 AND school_year = $2 AND state = 'awaiting_confirmation' AND id <> $3
   AND received_at <= (SELECT received_at FROM jobs WHERE id = $3)
"""

GET_JOB = "SELECT * FROM jobs WHERE id = $1"

# A job that has ended keeps its record as it was: the cancel is answered, not recorded.
REQUEST_CANCEL = """
UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
 WHERE id = $1 AND state NOT IN ('completed', 'cancelled', 'failed', 'rejected')
RETURNING state
"""
STATE_OF = "SELECT state FROM jobs WHERE id = $1"


async def register(
    conn: Connection, event: events.UploadRequested, *, rejected: tuple[str, str] | None = None
) -> Job | None:
    """Record a new job in state *received* and write its JobAccepted: the new job, None when
    the job id is already known.

    ``rejected`` (code, message): the request is refused; the job ends *rejected* at once, in
    the same transaction, and only its JobRejected and JobFinished are written.
    """
    if rejected is not None:
        async with conn.transaction():
            job = await _insert(conn, event, None)
            if job is None:
                return None
            code, message = rejected
            return await finish(
                conn,
                job.id,
                events.Outcome.REJECTED,
                f"ingest:{code}",
                error_code=code,
                error_message=message,
            )
    accepted = events.JobAccepted.for_job(event.job_id, request=event.request, file=event.file)
    job = await _insert(conn, event, accepted)
    if job is not None:
        outbox.written(conn, [accepted])
    return job


async def _insert(
    conn: Connection, event: events.UploadRequested, accepted: events.Event | None
) -> Job | None:
    req, who = event.request, event.requested_by
    row = await conn.fetchrow(
        INSERT_JOB,
        event.job_id,
        req.organisation_id,
        req.unit_id,
        req.school_year,
        req.format.value,
        req.options.archive_missing,
        req.options.treat_as_upper_secondary,
        event.file.key,
        event.file.name,
        event.file.sha256,
        event.file.size_bytes,
        who.user_id,
        who.name,
        who.email,
        who.language.value,
        event.kind,
        None if accepted is None else accepted.event_id,
        None if accepted is None else accepted.kind,
        None if accepted is None else accepted.model_dump(mode="json"),
        outbox.lease_seconds(conn),
    )
    return None if row is None else Job.model_validate(dict(row))


async def get(conn: Connection, job_id: UUID) -> Job | None:
    row = await conn.fetchrow(GET_JOB, job_id)
    return None if row is None else Job.model_validate(dict(row))


async def transition(
    conn: Connection,
    job_id: UUID,
    expected: JobState | frozenset[JobState],
    to: JobState,
    cause: str,
    *,
    require_not_cancelled: bool = False,
    by: events.Requester | None = None,
    job: Job | None = None,
    **columns: Any,
) -> Job | None:
    """Move the job from an expected state to ``to``: the job as moved, None when it was not there.

    The event that follows the new state (``following``; ``by``: who moved
    it, when the event names them) is written into the outbox in the same
    transaction; the caller has the relay publish it after the commit. With
    ``job`` (the job as the caller loaded it) the event is known before the
    move and written by the same statement, so the move stays one round
    trip. Call inside a transaction when the move must commit with other
    writes. The job comes back from the same statement, so the caller need
    not read it again.
    """
    sources = frozenset({expected}) if isinstance(expected, JobState) else expected
    for source in sources:
        if to not in NEXT.get(source, frozenset()):
            raise IllegalTransition(f"{source} → {to}")
    unknown = set(columns) - _SETTABLE
    if unknown:
        raise ValueError(f"a transition cannot set {sorted(unknown)}")
    assignments = ["state = $3", "updated_at = clock_timestamp()"]
    args: list[Any] = [job_id, [s.value for s in sources], to.value]
    # Known before the move: from the job as loaded, moved as this transition moves it;
    # without it, for a state whose event needs nothing of the job.
    foreseen = (
        _following_alone(job_id, to, by)
        if job is None
        else following(job.model_copy(update={"state": to, **columns}), by)
    )
    columns = {
        name: value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        for name, value in columns.items()
    }
    for name, value in columns.items():
        args.append(value)
        assignments.append(f"{name} = ${len(args)}")
    guard = " AND jobs.cancel_requested_at IS NULL" if require_not_cancelled else ""
    args.append(cause)
    cause_param = f"${len(args)}"
    announce = ""
    inline = not conn.is_in_transaction()
    if foreseen:
        args.extend([*outbox.columns(foreseen), outbox.lease_seconds(conn)])
        n = len(args)
        announce = (
            ", announce AS (INSERT INTO outbox (event_id, job_id, kind, payload, claimed_until)"
            f" SELECT e, $1, k, p::jsonb, clock_timestamp() + make_interval(secs => ${n})"
            f" FROM moved, unnest(${n - 3}::uuid[], ${n - 2}::text[], ${n - 1}::text[])"
            " AS t(e, k, p))"
        )
    # Column names come from _SETTABLE only, never from input.
    # The locking read returns the latest committed state, which is the one
    # the audit row must name as "from".
    # It also returns how long the job was in that state (since its latest
    # transition) and since it arrived, for the metrics.
    # One statement (the audit row, and the event when foreseen, written by
    # data-modifying CTEs), so the move, its audit row and its event commit
    # together without a transaction (or a savepoint inside the caller's)
    # around them: one round trip, not four.
    sql = (
        "WITH previous AS (SELECT state, received_at, (SELECT max(at) FROM job_transitions"
        " WHERE job_id = $1) AS since FROM jobs WHERE id = $1 FOR UPDATE), "
        f"moved AS (UPDATE jobs SET {', '.join(assignments)} FROM previous "
        f"WHERE jobs.id = $1 AND previous.state = ANY($2::text[]){guard} "
        "RETURNING jobs.*, previous.state AS previous_state, previous.since), "
        "audit AS (INSERT INTO job_transitions (job_id, from_state, to_state, cause)"
        f" SELECT $1, moved.previous_state, $3, {cause_param} FROM moved){announce} "
        "SELECT *,"
        " extract(epoch FROM clock_timestamp() - since)::float8 AS in_state,"
        " extract(epoch FROM clock_timestamp() - received_at)::float8 AS in_job"
        " FROM moved"
    )
    follows = foreseen is None and to is not JobState.VALIDATING
    if follows and inline:
        async with conn.transaction():
            moved, moved_job = await _move(conn, sql, args, by, follows=True)
    else:
        # Foreseen, or nothing follows, or inside the caller's transaction.
        moved, moved_job = await _move(conn, sql, args, by, follows=follows)
    if moved is None or moved_job is None:
        return None
    if foreseen:
        outbox.written(conn, foreseen)
    metrics.on_transition(moved["previous_state"], to.value, moved["in_state"], moved["in_job"])
    metrics.on_columns(columns)
    return moved_job


async def _move(
    conn: Connection, sql: str, args: list[Any], by: events.Requester | None, *, follows: bool
) -> tuple[Any, Job | None]:
    """Run the move; ``follows``: write the event that follows it after it, in the caller's
    transaction."""
    moved = await conn.fetchrow(sql, *args)
    if moved is None:
        return None, None
    # The extra columns (previous_state, since, in_state, in_job) are not the job's.
    job = Job.model_validate(dict(moved))
    if follows:
        await outbox.enqueue(conn, following(job, by))
    return moved, job


async def finish(
    conn: Connection,
    job_id: UUID,
    outcome: events.Outcome,
    cause: str,
    *,
    error_code: str | None = None,
    error_message: str | None = None,
    **columns: Any,
) -> Job | None:
    """End an active job: the job as ended, None when it had already ended."""
    target = OUTCOME_STATE[outcome]
    return await transition(
        conn,
        job_id,
        frozenset(s for s in ACTIVE if target in NEXT[s]),
        target,
        cause,
        finished_at=datetime.now(UTC),
        error_code=error_code,
        error_message=error_message,
        **columns,
    )


RECORD_PROGRESS = """
UPDATE jobs SET progress_stage = $2, progress_done = $3, progress_total = $4
 WHERE id = $1 AND state = $2
"""


async def record_progress(
    conn: Connection, job_id: UUID, stage: JobState, done: int, total: int | None
) -> None:
    """Rows done of the total in the running stage; ignored once the job moved on."""
    await conn.execute(RECORD_PROGRESS, job_id, stage.value, done, total)


async def request_cancel(conn: Connection, job_id: UUID) -> JobState | None:
    """Record the cancel request; returns the job's state, None for an unknown job."""
    state = await conn.fetchval(REQUEST_CANCEL, job_id)
    if state is None:
        state = await conn.fetchval(STATE_OF, job_id)
    return None if state is None else JobState(state)


async def start_import(conn: Connection, job_id: UUID) -> None:
    """Note when the import started, the first time it did."""
    await conn.execute(START_IMPORT, job_id)


async def _audited(conn: Connection, row: Any, cause: str) -> Job | None:
    """The job a field change returned, with its audit row (the state stays)."""
    if row is None:
        return None
    job = Job.model_validate(dict(row))
    await conn.execute(INSERT_TRANSITION, job.id, job.state.value, job.state.value, cause)
    return job


async def hold_archive(
    conn: Connection, job_id: UUID, archive: int, active: int, hold_ratio: float
) -> Job | None:
    """The archive set (``archive`` of the unit's ``active`` patients) is too large: the job
    waits in *archiving* for a decision, and ArchiveHeld says so.

    None when it was held already (or is no longer archiving). Call inside a
    transaction: the change, its audit row and its event commit together.
    """
    job = await _audited(conn, await conn.fetchrow(HOLD_ARCHIVE, job_id), "archive held")
    if job is not None:
        held = events.ArchiveHeld.for_job(
            job_id, archive=archive, active=active, hold_ratio=hold_ratio
        )
        await outbox.enqueue(conn, [held])
    return job


async def decide_archive(
    conn: Connection, job_id: UUID, approve: bool, by: events.Requester
) -> Job | None:
    """Record the decision on a held archive, once: the job, None when nothing was decided.

    Call inside a transaction: the change, its audit row and its ArchiveDecided commit together.
    """
    decision = "approved" if approve else "declined"
    row = await conn.fetchrow(DECIDE_ARCHIVE, job_id, decision, by.user_id)
    job = await _audited(conn, row, f"archive {decision} by {by.user_id}")
    if job is not None:
        await outbox.enqueue(conn, following(job, by))
    return job


async def claim_undo(conn: Connection, job_id: UUID) -> bool:
    """Lock a completed job whose archiving may be undone; False when it may not.

    Call inside the transaction that undoes it and then calls ``record_undo``.
    """
    return bool(await conn.fetchval(CLAIM_UNDO, job_id))


async def record_undo(
    conn: Connection, job_id: UUID, reactivated: int, by: events.Requester
) -> Job | None:
    """The claimed job's archiving was undone: ``reactivated`` patients are active again."""
    row = await conn.fetchrow(RECORD_UNDO, job_id, reactivated)
    cause = f"archiving undone by {by.user_id}: {reactivated} re-activated"
    job = await _audited(conn, row, cause)
    if job is not None:
        undone = events.ArchiveUndone.for_job(job_id, reactivated=reactivated, undone_by=by)
        await outbox.enqueue(conn, [undone])
    return job


async def superseded_jobs(conn: Connection, job: Job) -> list[UUID]:
    """Earlier jobs of the same unit and school year that still await confirmation."""
    rows = await conn.fetch(SUPERSEDED_BY, job.unit_id, job.school_year, job.id)
    return [row["id"] for row in rows]


async def supersede(conn: Connection, job_id: UUID, by: UUID) -> None:
    """Name the newer job that replaces this one: before it ends, so whoever sees it ended
    sees why."""
    await conn.execute(SUPERSEDE, job_id, by)


# Who re-drives a job when an event names the person who moved it.
OPERATOR = events.Requester(
    user_id="operator", name="rosterflow operator", email="operators@rosterflow.invalid"
)


def _following_alone(
    job_id: UUID, state: JobState, by: events.Requester | None
) -> list[events.Event] | None:
    """The events that announce a state and need nothing of the job but its id; None for
    the states whose events do."""
    if state is JobState.IMPORTING:
        return [events.ImportConfirmed.for_job(job_id, confirmed_by=by or OPERATOR)]
    return None


def following(job: Job, by: events.Requester | None = None) -> list[events.Event]:
    """The events that announce the job's state, in order: the one place that says which
    event follows which state (``by``: who moved it, for the events that name them)."""
    state = job.state
    alone = _following_alone(job.id, state, by)
    if alone is not None:
        return alone
    if state is JobState.RECEIVED:
        return [events.JobAccepted.for_job(job.id, request=job.request, file=job.file)]
    if state is JobState.AWAITING_CONFIRMATION:
        assert job.check_result is not None, "a checked job has its check result"
        return [job.check_result.validated(job.id)]
    if state is JobState.ARCHIVING:
        if job.archive_decision is not None:
            approve = job.archive_decision == "approved"
            return [
                events.ArchiveDecided.for_job(job.id, approve=approve, decided_by=by or OPERATOR)
            ]
        if job.archive_held_at is not None:
            return []  # ArchiveHeld carries the archive set's figures: hold_archive writes it
        counts = events.ImportCounts.model_validate(job.import_counts)
        return [
            events.ImportApplied.for_job(job.id, counts=counts, archive_missing=job.archive_missing)
        ]
    if state is JobState.REJECTED:
        rejected = events.JobRejected.for_job(
            job.id, code=job.error_code or "rejected", message=job.error_message or ""
        )
        return [rejected, job.finished_event()]
    if job.terminal:
        return [job.finished_event()]
    return []  # validating: the check's own end announces it


def next_event(job: Job) -> events.Event | None:
    """The event whose consumer moves the job on from where it is; None when the job
    waits for a person (awaiting confirmation, its archive held for a decision)."""
    if job.state is JobState.AWAITING_CONFIRMATION or job.awaiting_archive_decision:
        return None
    if job.state in (JobState.RECEIVED, JobState.VALIDATING):
        return events.JobAccepted.for_job(job.id, request=job.request, file=job.file)
    return following(job, OPERATOR)[-1]


async def redrive(
    conn: Connection, job: Job, consumers: Callable[[events.Event], Sequence[str]]
) -> events.Event | None:
    """Write the event that moves the job on from where it is into the outbox again, and
    forget the record of it of every consumer group that reads it (``consumers``), so its
    handler runs and finds where the job is.

    None (and nothing written) when the job waits for a person: awaiting
    confirmation, or its archive held for a decision. Safe at any time: every
    handler is a compare-and-set on the job's state and the event carries its
    own deterministic id. The caller has the relay publish it.
    """
    event = next_event(job)
    if event is None:
        return None
    async with conn.transaction():
        await conn.execute(db.FORGET_EVENT, event.event_id, job.id, list(consumers(event)))
        await outbox.enqueue(conn, [event])
    return event
