"""The HTTP API of the front door.

Until bearer tokens arrive (issue 5), the caller names the acting
administrator in X-User-* headers; the journal platform is the only client.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from pydantic import BaseModel, ValidationError

from rosterflow import events, jobs
from rosterflow.jobs import Job, JobState
from rosterflow.runtime import Runtime
from rosterflow.storage import UploadTooLarge, upload_key
from services.ingest import commands


class NotificationView(BaseModel):
    """The email for the job's outcome: 'sending', 'retrying', 'sent', 'refused', 'abandoned'."""

    state: str
    attempts: int
    last_error: str | None


# The job's latest email; operators see a refused or still retrying one here.
NOTIFICATION_OF_JOB = """
SELECT state, attempts, last_error FROM notifications
 WHERE job_id = $1 ORDER BY updated_at DESC LIMIT 1
"""


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
    state: JobState
    cancel_requested: bool
    archive_held: bool
    archive_decision: str | None
    archive_undone_count: int | None
    timestamps: dict[str, datetime | None]
    check_result: dict[str, Any] | None
    import_counts: dict[str, int] | None
    archived_count: int | None
    error_code: str | None
    error_message: str | None
    notification: NotificationView | None = None

    @classmethod
    def of(cls, job: Job, notification: NotificationView | None = None) -> JobView:
        stamps = [
            "received_at",
            "validation_started_at",
            "validation_finished_at",
            "confirmed_at",
            "import_started_at",
            "import_finished_at",
            "archived_at",
            "finished_at",
        ]
        return cls(
            **job.model_dump(include=set(cls.model_fields) & set(Job.model_fields)),
            cancel_requested=job.cancel_requested_at is not None,
            archive_held=job.archive_held_at is not None,
            timestamps={name: getattr(job, name) for name in stamps},
            notification=notification,
        )


def requester(
    x_user_id: Annotated[str, Header()],
    x_user_name: Annotated[str, Header()],
    x_user_email: Annotated[str, Header()],
    x_user_language: Annotated[events.Language, Header()] = events.Language.SV,
) -> events.Requester:
    try:
        return events.Requester(
            user_id=x_user_id, name=x_user_name, email=x_user_email, language=x_user_language
        )
    except ValidationError as exc:
        raise HTTPException(400, "the X-User-* headers do not name a valid user") from exc


Who = Annotated[events.Requester, Depends(requester)]


def _decided(job: Job | None, decision: str) -> JobView:
    if job is None:
        raise HTTPException(404, "no such import")
    if job.archive_decision != decision:
        raise HTTPException(
            409,
            "the import's archive is not held for a decision"
            if job.archive_decision is None
            else f"the archive was already {job.archive_decision}",
        )
    return JobView.of(job)


def build_router(rt: Runtime) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post("/imports", status_code=202)
    async def upload(
        request: Request,
        who: Who,
        organisation_id: UUID,
        unit_id: UUID,
        file_name: Annotated[str, Query(min_length=1, max_length=255)],
        school_year: str | None = None,
        format: events.FileFormat = events.FileFormat.ROSTERFLOW_CSV,
        archive_missing: bool = False,
        treat_as_upper_secondary: bool = False,
    ) -> JobView:
        """Upload a roster file as the request body; the check starts at once."""
        job_id = uuid4()
        try:
            import_request = events.ImportRequest(
                organisation_id=organisation_id,
                unit_id=unit_id,
                school_year=school_year or events.school_year_of(datetime.now().astimezone()),
                format=format,
                options=events.ImportOptions(
                    archive_missing=archive_missing,
                    treat_as_upper_secondary=treat_as_upper_secondary,
                ),
            )
        except ValidationError as exc:
            raise HTTPException(422, exc.errors(include_input=False, include_url=False)) from exc
        key = upload_key(organisation_id, job_id)
        try:
            written = await rt.store.write_stream(
                key, request.stream(), rt.settings.storage.max_upload_bytes
            )
        except UploadTooLarge as exc:
            raise HTTPException(413, str(exc)) from exc
        event = events.UploadRequested(
            job_id=job_id,
            request=import_request,
            file=events.StoredFile(
                key=key, name=file_name, sha256=written.sha256, size_bytes=written.size_bytes
            ),
            requested_by=who,
        )
        return JobView.of(await commands.accept_upload(rt, event))

    @router.get("/imports/{job_id}")
    async def status(job_id: UUID) -> JobView:
        async with rt.pool.acquire() as conn:
            job = await jobs.get(conn, job_id)
            email = await conn.fetchrow(NOTIFICATION_OF_JOB, job_id)
        if job is None:
            raise HTTPException(404, "no such import")
        return JobView.of(job, None if email is None else NotificationView(**dict(email)))

    @router.post("/imports/{job_id}/confirm")
    async def confirm(job_id: UUID, who: Who) -> JobView:
        job = await commands.confirm(rt, job_id, who)
        if job is None:
            raise HTTPException(404, "no such import")
        if job.confirmed_at is None:
            raise HTTPException(409, f"the import is {job.state.value} and cannot be confirmed")
        return JobView.of(job)

    @router.post("/imports/{job_id}/archive/approve")
    async def approve_archive(job_id: UUID, who: Who) -> JobView:
        """Approve a held archive: the archiver archives and completes the job."""
        return _decided(await commands.decide_archive(rt, job_id, True, who), "approved")

    @router.post("/imports/{job_id}/archive/decline")
    async def decline_archive(job_id: UUID, who: Who) -> JobView:
        """Finish a held job without archiving anybody."""
        return _decided(await commands.decide_archive(rt, job_id, False, who), "declined")

    @router.post("/imports/{job_id}/archive/undo")
    async def undo_archive(job_id: UUID, who: Who) -> JobView:
        """Re-activate exactly the patients this import archived and nobody archived since."""
        job = await commands.undo_archive(rt, job_id, who)
        if job is None:
            raise HTTPException(404, "no such import")
        if job.archive_undone_count is None:
            raise HTTPException(409, "only a completed import that archived patients can be undone")
        return JobView.of(job)

    @router.post("/imports/{job_id}/cancel")
    async def cancel(job_id: UUID, who: Who) -> JobView:
        job = await commands.cancel(rt, job_id, who, broadcast=True)
        if job is None:
            raise HTTPException(404, "no such import")
        return JobView.of(job)

    return router
