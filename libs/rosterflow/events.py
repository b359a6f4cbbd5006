"""The event contracts: the source of truth for schemas/.

Requests come from the journal platform (UploadRequested,
ConfirmationRequested, CancelRequested); everything else is a fact the
pipeline publishes about a job, named in the past tense. Every message is
keyed by its job id, so all events of one job are ordered on one partition.

Events published by the pipeline carry a deterministic ``event_id``
(uuid5 of job id and event kind): when a handler re-publishes after a crash,
consumers see the same id and can recognise the duplicate.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID, uuid4, uuid5

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

# The school years an import may name: two consecutive years, the first in
# this range. Enumerated, so that the documented pattern (JSON Schema,
# OpenAPI) accepts exactly what the code accepts, and no "0000/0000".
FIRST_SCHOOL_YEAR, LAST_SCHOOL_YEAR = 2000, 2099
SCHOOL_YEAR_PATTERN = (
    "^(?:" + "|".join(f"{y}/{y + 1}" for y in range(FIRST_SCHOOL_YEAR, LAST_SCHOOL_YEAR + 1)) + ")$"
)


def _consecutive(value: str) -> str:
    if not is_consecutive_school_year(value):
        raise ValueError("a school year spans two consecutive years, e.g. 2026/2027")
    return value


SchoolYear = Annotated[
    str, StringConstraints(pattern=SCHOOL_YEAR_PATTERN), AfterValidator(_consecutive)
]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def _cut_to(limit: int) -> BeforeValidator:
    """Text cut to ``limit`` characters (marked) before it is checked against it.

    Text copied from a file (a header, a message quoting one) must never make
    an event too large for the broker; it is cut where it enters the event.
    """

    def cut(value: Any) -> Any:
        if isinstance(value, str) and len(value) > limit:
            return value[: limit - 1] + "…"
        return value

    return BeforeValidator(cut)


# A message for a person (an error, a rejection's reason).
Text = Annotated[str, _cut_to(2000), Field(max_length=2000)]
# A code, a header name: short by nature.
Short = Annotated[str, _cut_to(200), Field(max_length=200)]


def _now() -> datetime:
    return datetime.now(UTC)


class FileFormat(StrEnum):
    ROSTERFLOW_CSV = "rosterflow_csv"
    ROSTERFLOW_XLSX = "rosterflow_xlsx"
    SCHOOLSOFT = "schoolsoft"
    SCHOOLSOFT_DAT = "schoolsoft_dat"
    SCHOOLSOFT_GUARDIANS = "schoolsoft_guardians"
    ONEROSTER = "oneroster"

    @property
    def guardians_only(self) -> bool:
        """A guardian file: it updates the guardians of the unit's students, nothing else."""
        return self is FileFormat.SCHOOLSOFT_GUARDIANS


class Language(StrEnum):
    SV = "sv"
    EN = "en"


class Outcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class Message(BaseModel):
    """Anything on a rosterflow topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[str]
    event_id: UUID = Field(default_factory=uuid4)


class Event(Message):
    """Fields every event carries."""

    job_id: UUID
    occurred_at: datetime = Field(default_factory=_now)
    schema_version: Literal[1] = 1

    @classmethod
    def for_job(cls, job_id: UUID, **payload: Any) -> Event:
        """The event with the id every re-publication of it will carry."""
        return cls(event_id=uuid5(job_id, cls.kind), job_id=job_id, **payload)


class Requester(BaseModel):
    """The administrator who acts; the platform vouches for them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)
    language: Language = Language.SV


class ImportOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    archive_missing: bool = False
    treat_as_upper_secondary: bool = False


class StoredFile(BaseModel):
    """An uploaded file in object storage. The key is never the client's name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(min_length=1, max_length=1024)
    name: str = Field(min_length=1, max_length=255, description="The file name as uploaded")
    sha256: Sha256
    size_bytes: int = Field(ge=0)


class ImportRequest(BaseModel):
    """What the administrator chose in step 1 of the wizard."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    organisation_id: UUID
    unit_id: UUID
    school_year: SchoolYear
    format: FileFormat = FileFormat.ROSTERFLOW_CSV
    options: ImportOptions = Field(default_factory=ImportOptions)


# --- requests from the journal platform ---------------------------------


class UploadRequested(Event):
    """The platform stored a file and asks for it to be checked."""

    kind: ClassVar[str] = "upload_requested"
    request: ImportRequest
    file: StoredFile
    requested_by: Requester


class ConfirmationRequested(Event):
    """The administrator confirmed the check result: apply the valid rows."""

    kind: ClassVar[str] = "confirmation_requested"
    requested_by: Requester


class CancelRequested(Event):
    """Stop the job wherever it runs. Published on the compacted cancellation topic."""

    kind: ClassVar[str] = "cancel_requested"
    requested_by: Requester | None = None


# --- facts the pipeline publishes ----------------------------------------


class JobAccepted(Event):
    kind: ClassVar[str] = "job_accepted"
    request: ImportRequest
    file: StoredFile


class JobRejected(Event):
    kind: ClassVar[str] = "job_rejected"
    code: Short
    message: Text


class CheckCounts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int = Field(ge=0, description="Data rows in the file, empty ones included")
    valid: int = Field(ge=0)
    invalid: int = Field(ge=0)
    empty: int = Field(ge=0)
    warnings: int = Field(ge=0)
    issues_not_listed: int = Field(
        0,
        ge=0,
        description="Issues found but not in the report of invalid rows: past the first "
        "few of a row (the row then has a row_issues_not_listed note) or past the report's cap",
    )
    protected_identities: int = Field(
        0,
        ge=0,
        description="Valid rows of students marked with a protected identity: imported with the "
        "mark and without any contact data of theirs or their guardians'",
    )


class Plan(BaseModel):
    """What confirming would do, computed against the journal at check time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    create: int = Field(ge=0)
    update: int = Field(ge=0)
    unchanged: int = Field(ge=0)
    reactivate: int = Field(ge=0)
    archive: int = Field(ge=0)
    archive_held: bool = False
    guardians_create: int = Field(0, ge=0)
    guardians_update: int = Field(0, ge=0)
    guardians_unchanged: int = Field(0, ge=0)


class Detected(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    encoding: str
    delimiter: str
    format: FileFormat
    columns: dict[str, Short] = Field(
        description="Canonical column → header in the file (cut to 200 characters)"
    )
    header_line: int = Field(
        1,
        ge=1,
        description="The line (spreadsheet row) the header row was found on: the first of "
        "the first few non-empty ones that names the required columns",
    )


class Report(BaseModel):
    """Where the check report lies in object storage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    valid_rows_key: str
    invalid_rows_key: str
    archive_candidates_key: str | None = Field(
        default=None,
        description="With archive missing: who would be archived (identity number, given name, "
        "family name), as Parquet",
    )


class JobValidated(Event):
    """The check is done; the job awaits the administrator's confirmation."""

    kind: ClassVar[str] = "job_validated"
    counts: CheckCounts
    plan: Plan
    detected: Detected
    report: Report


class ImportConfirmed(Event):
    kind: ClassVar[str] = "import_confirmed"
    confirmed_by: Requester


class ImportCounts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    created: int = Field(ge=0)
    updated: int = Field(ge=0)
    unchanged: int = Field(ge=0)
    reactivated: int = Field(ge=0)
    guardians_created: int = Field(0, ge=0, description="Guardians stored for the first time")
    guardians_updated: int = Field(
        0,
        ge=0,
        description="Stored guardians whose data changed (or whose contact data was cleared "
        "for a student with a protected identity)",
    )
    guardians_unchanged: int = Field(
        0, ge=0, description="Guardians the file names as they are already stored"
    )


class ImportApplied(Event):
    """The valid rows are committed to the journal."""

    kind: ClassVar[str] = "import_applied"
    counts: ImportCounts
    archive_missing: bool


class ArchiveHeld(Event):
    """Archiving would exceed the safety threshold; it waits for an administrator."""

    kind: ClassVar[str] = "archive_held"
    archive: int = Field(ge=0, description="Patients the archive set holds")
    active: int = Field(ge=0, description="Active patients of the unit")
    hold_ratio: float = Field(gt=0, le=1)


class ArchiveDecisionRequested(Event):
    """The administrator approves (or declines) a held archive."""

    kind: ClassVar[str] = "archive_decision_requested"
    approve: bool
    requested_by: Requester


class ArchiveDecided(Event):
    """A held archive is approved or declined; the archiver finishes the job."""

    kind: ClassVar[str] = "archive_decided"
    approve: bool
    decided_by: Requester


class ArchiveUndone(Event):
    """An import's archiving was reverted."""

    kind: ClassVar[str] = "archive_undone"
    reactivated: int = Field(ge=0)
    undone_by: Requester


class JobFinished(Event):
    """The job reached a terminal state; the notifier emails the requester."""

    kind: ClassVar[str] = "job_finished"
    outcome: Outcome
    imported: ImportCounts | None = None
    archived: int = Field(default=0, ge=0)
    error_code: Short | None = None
    error_message: Text | None = None


class DeadLetter(Message):
    """A message that can never be processed, kept with the reason for a person."""

    kind: ClassVar[str] = "dead_letter"
    job_id: UUID | None = None
    occurred_at: datetime = Field(default_factory=_now)
    schema_version: Literal[1] = 1
    source_topic: str
    partition: int
    offset: int
    consumer: str
    reason: Text
    original_key_b64: str | None = None
    original_value_b64: str = Field(
        description="The message as it came, base64; its first 512 KiB when it was larger"
    )
    original_value_truncated: bool = False


ALL_EVENTS: tuple[type[Message], ...] = (
    UploadRequested,
    ConfirmationRequested,
    CancelRequested,
    JobAccepted,
    JobRejected,
    JobValidated,
    ImportConfirmed,
    ImportApplied,
    ArchiveHeld,
    ArchiveDecisionRequested,
    ArchiveDecided,
    ArchiveUndone,
    JobFinished,
    DeadLetter,
)


def school_year_of(moment: datetime) -> str:
    """The school year (1 July – 30 June) a moment falls in."""
    start = moment.year if moment.month >= 7 else moment.year - 1
    return f"{start}/{start + 1}"


def is_consecutive_school_year(value: str) -> bool:
    return re.fullmatch(SCHOOL_YEAR_PATTERN, value) is not None
