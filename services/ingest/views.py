"""What the API answers: the job, the overview's rows, pages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from rosterflow.jobs import Job, JobState
from rosterflow.report import CONTACT_COLUMNS, GUARDIAN_FIELDS, GUARDIANS
from services.validator.header import CANONICAL
from services.validator.mapping import Mapped

T = TypeVar("T")

STAGE_STAMPS = (
    "received_at",
    "validation_started_at",
    "validation_finished_at",
    "confirmed_at",
    "import_started_at",
    "import_finished_at",
    "archived_at",
    "finished_at",
)


class NotificationView(BaseModel):
    """The email for the job's outcome: 'sending', 'retrying', 'sent', 'refused', 'abandoned'."""

    state: str
    attempts: int
    last_error: str | None


class Progress(BaseModel):
    """Rows done of the total in the running stage (total unknown while a file is read)."""

    stage: str
    done: int
    total: int | None


class RequesterView(BaseModel):
    user_id: str
    name: str


class JobView(BaseModel):
    id: UUID
    organisation_id: UUID
    unit_id: UUID
    school_year: str
    format: str
    archive_missing: bool
    treat_as_upper_secondary: bool
    file_name: str
    file_sha256: str
    file_size_bytes: int
    requested_by: RequesterView
    state: JobState
    cancel_requested: bool
    progress: Progress | None
    archive_held: bool
    archive_decision: str | None
    archive_undone_count: int | None
    superseded_by: UUID | None
    timestamps: dict[str, datetime | None]
    check_result: dict[str, Any] | None
    column_mapping: dict[str, Any] | None = Field(
        default=None,
        description="The file's header, its columns the format did not map (with suggestions) "
        "and the required ones missing; OneRoster: the file's orgs. Set by the check, passed "
        "or failed on the header; what POST …/column-mapping maps",
    )
    import_counts: dict[str, int] | None
    archived_count: int | None
    error_code: str | None
    error_message: str | None
    notification: NotificationView | None = None

    @classmethod
    def of(cls, job: Job, notification: NotificationView | None = None) -> JobView:
        return cls(
            **job.model_dump(include=set(cls.model_fields) & set(Job.model_fields) - {_CHECK}),
            # How the importer stages the rows is the pipeline's business, not the API's.
            check_result=None
            if job.check_result is None
            else job.check_result.model_dump(mode="json", exclude={"staging"}),
            requested_by=RequesterView(user_id=job.requested_by_id, name=job.requested_by_name),
            cancel_requested=job.cancel_requested_at is not None,
            progress=progress_of(job),
            archive_held=job.archive_held_at is not None,
            timestamps={name: getattr(job, name) for name in STAGE_STAMPS},
            notification=notification,
        )


_CHECK = "check_result"


def progress_of(job: Job) -> Progress | None:
    if job.progress_stage is None or job.progress_stage != job.state.value:
        return None
    return Progress(stage=job.progress_stage, done=job.progress_done or 0, total=job.progress_total)


class Page(BaseModel, Generic[T]):
    total: int = Field(description="Items matching the filters, all pages together")
    offset: int
    limit: int
    items: list[T]


class OverviewItem(BaseModel):
    id: UUID
    unit_id: UUID
    unit_name: str | None
    school_year: str
    file_name: str
    format: str
    archive_missing: bool
    treat_as_upper_secondary: bool
    requested_by: RequesterView
    state: JobState
    received_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None = Field(description="Received to finished (or to now)")
    rows: int | None
    valid: int | None
    invalid: int | None
    imported: dict[str, int] | None
    archived: int | None
    error_code: str | None


class IssueRow(BaseModel):
    line: int
    column: str | None
    code: str
    severity: str
    value: str | None
    identity_number: str | None
    message_sv: str | None
    message_en: str | None


class ContactView(BaseModel):
    """Contact data as checked (rosterflow.report.CONTACT_COLUMNS), a student's or a guardian's."""

    email: str | None
    phone: str | None
    phone_2: str | None
    phone_3: str | None
    street: str | None
    postcode: str | None
    city: str | None


class GuardianView(ContactView):
    """A guardian of the student as the file gives them (contact data as checked)."""

    place: int = Field(description="The guardian's place in the row: 1 or 2")
    name: str | None
    identity_number: str | None = Field(description="12 characters, where given and valid")


class ValidRow(ContactView):
    line: int
    identity_number: str
    identity_kind: str
    given_name: str | None = Field(
        description="Null in a guardian file's rows: they name no student"
    )
    family_name: str | None = Field(
        description="Null in a guardian file's rows: they name no student"
    )
    school_form: str | None
    grade_year: int | None
    class_name: str | None
    protected_identity: bool = Field(
        description="A protected identity: no contact data of the student's, nor of their "
        "guardians', is shown (the check dropped it before any rule ran)"
    )
    guardians: list[GuardianView] = Field(
        description="Up to two, in the file's order; a guardian the row leaves blank is not listed"
    )

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> ValidRow:
        """A row of the report's valid rows (rosterflow.report.VALID_ROWS_SCHEMA); a report
        written before a column existed reads as without it."""
        protected = bool(row.get("protected_identity"))
        # The check already dropped a protected student's contact data; the answer
        # holds none even if a report said otherwise.
        contact = {c: None if protected else row.get(c) for c in CONTACT_COLUMNS}
        guardians = []
        for place, prefix in enumerate(GUARDIANS, start=1):
            fields = {f: row.get(f"{prefix}_{f}") for f in GUARDIAN_FIELDS}
            if all(v is None for v in fields.values()):
                continue
            if protected:
                fields.update(dict.fromkeys(CONTACT_COLUMNS))
            guardians.append(GuardianView(place=place, **fields))
        return cls(
            **{n: row[n] for n in _ROW_FIELDS},
            **contact,
            protected_identity=protected,
            guardians=guardians,
        )


_ROW_FIELDS = (
    "line",
    "identity_number",
    "identity_kind",
    "given_name",
    "family_name",
    "school_form",
    "grade_year",
    "class_name",
)


class ArchiveCandidate(BaseModel):
    identity_number: str
    given_name: str | None
    family_name: str | None


class PlanView(BaseModel):
    create: int
    update: int
    unchanged: int
    reactivate: int
    archive: int
    archive_held: bool = Field(description="Archiving waits for an administrator's approval")
    guardians_create: int = Field(description="Guardians the import would store for the first time")
    guardians_update: int = Field(description="Stored guardians whose data the import would change")
    guardians_unchanged: int = Field(
        0, description="Guardians the file names as they are already stored"
    )
    archive_candidates: Page[ArchiveCandidate] | None = Field(
        description="Who would be archived (with archive missing), paged"
    )


class Exclusion(BaseModel):
    patient_id: UUID
    identity_number: str
    given_name: str
    family_name: str
    created_at: datetime
    created_by: str


class NewExclusion(BaseModel):
    identity_number: str = Field(
        pattern=r"^\d{8}[0-9A-Z]{4}$", description="The patient's identity number, 12 characters"
    )


class UnitOptions(BaseModel):
    unit_id: UUID
    organisation_id: UUID
    name: str
    school_level: str
    formats: list[str]
    default_school_year: str
    school_years: list[str] = Field(description="The school years the wizard offers")
    archive_missing_allowed: bool
    treat_as_upper_secondary_allowed: bool = Field(
        description="Offered only for units whose school level is unspecified"
    )


class ColumnMappingRequest(BaseModel):
    """The administrator's mapping of a file's columns, remembered for its header."""

    columns: dict[str, str | list[str | None] | None] = Field(
        description="Header name as the check result's column_mapping.header shows it → the "
        "column it holds, or null for a column not to read; for a name the header has more "
        "than once (ignoring case, spaces and å/ä/ö), a list with one of those for each of "
        "its columns in the header's order (a column or null each)"
    )
    org_sourced_id: str | None = Field(
        default=None,
        max_length=255,
        description="OneRoster: the sourcedId of the org whose students the unit takes",
    )

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, columns: dict[str, Mapped]) -> dict[str, Mapped]:
        chosen = {c for v in columns.values() for c in (v if isinstance(v, list) else [v])}
        unknown = {c for c in chosen if c is not None} - set(CANONICAL)
        if unknown:
            raise ValueError(f"unknown roster columns {sorted(unknown)[:10]}")
        return columns
