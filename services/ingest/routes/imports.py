"""An import job: upload, status, confirm, cancel, the held archive and undo."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from starlette.requests import ClientDisconnect

from rosterflow import events, jobs
from rosterflow.jobs import JobState
from rosterflow.storage import UploadTooLarge, upload_key
from services.ingest import access, commands
from services.ingest.access import RuntimeDep
from services.ingest.auth import CallerDep
from services.ingest.errors import ApiError, import_not_found, responses
from services.ingest.logic import check_request
from services.ingest.views import ColumnMappingRequest, JobView, NotificationView
from services.validator.mapping import columns_named

router = APIRouter(prefix="/v1", tags=["imports"])

# The job's latest email; operators see a refused or still retrying one here.
NOTIFICATION_OF_JOB = """
SELECT state, attempts, last_error FROM notifications
 WHERE job_id = $1 ORDER BY updated_at DESC LIMIT 1
"""


_FILE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The roster file's bytes, streamed (CSV or XLSX)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("/imports", status_code=202, responses=responses(413, 503), openapi_extra=_FILE_BODY)
async def upload(
    request: Request,
    rt: RuntimeDep,
    caller: CallerDep,
    organisation_id: UUID,
    unit_id: UUID,
    file_name: Annotated[str, Query(min_length=1, max_length=255)],
    school_year: Annotated[
        str | None,
        Query(pattern=events.SCHOOL_YEAR_PATTERN, description="e.g. 2026/2027; current default"),
    ] = None,
    format: events.FileFormat = events.FileFormat.ROSTERFLOW_CSV,
    archive_missing: bool = False,
    treat_as_upper_secondary: bool = False,
) -> JobView:
    """Upload a roster file as the request body; the check starts at once.

    Everything about the request is checked before the body is read; a refused
    upload leaves neither a job nor an object behind.
    """
    access.organisation(caller, organisation_id)
    unit = await access.unit_of(rt, caller, unit_id, status=422)
    year = school_year or events.school_year_of(datetime.now().astimezone())
    if not events.is_consecutive_school_year(year):
        raise ApiError(
            422, "school_year_malformed", "A school year spans two consecutive years: 2026/2027."
        )
    import_request = events.ImportRequest(
        organisation_id=organisation_id,
        unit_id=unit_id,
        school_year=year,
        format=format,
        options=events.ImportOptions(
            archive_missing=archive_missing, treat_as_upper_secondary=treat_as_upper_secondary
        ),
    )
    rejection = check_request(import_request, unit)
    if rejection is not None:
        raise ApiError(422, rejection.code, rejection.message)
    limit = rt.settings.storage.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)

    job_id = uuid4()
    key = upload_key(organisation_id, job_id)
    try:
        written = await rt.store.write_stream(key, request.stream(), limit)
    except UploadTooLarge as exc:
        raise _too_large(limit) from exc
    except ClientDisconnect as exc:
        rt.store.delete(key)
        raise ApiError(400, "upload_interrupted", "The upload was interrupted.") from exc
    if written.size_bytes == 0:
        rt.store.delete(key)
        raise ApiError(422, "file_empty", "The uploaded file is empty.")
    event = events.UploadRequested(
        job_id=job_id,
        request=import_request,
        file=events.StoredFile(
            key=key, name=file_name, sha256=written.sha256, size_bytes=written.size_bytes
        ),
        requested_by=caller.requester,
    )
    try:
        job = await commands.accept_upload(rt, event, unreachable_fails=True)
    except commands.PipelineUnavailable as exc:
        raise ApiError(
            503,
            "pipeline_unavailable",
            "The import pipeline cannot be reached; the upload was not started. Try again.",
            details={"job_id": str(job_id), "state": JobState.FAILED.value},
            **{"Retry-After": "30"},
        ) from exc
    if job.state is JobState.REJECTED:
        # The unit changed between the check above and the registration.
        raise ApiError(422, job.error_code or "rejected", job.error_message or "Refused.")
    return JobView.of(job)


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413, "file_too_large", f"The file is larger than {limit} bytes.", {"limit_bytes": limit}
    )


@router.get("/imports/{job_id}", responses=responses(404))
async def status(job_id: UUID, rt: RuntimeDep, caller: CallerDep) -> JobView:
    """State, progress of the running stage, per-stage timestamps, check result, counts."""
    job = await access.job_of(rt, caller, job_id)
    async with rt.pool.acquire() as conn:
        email = await conn.fetchrow(NOTIFICATION_OF_JOB, job_id)
    return JobView.of(job, None if email is None else NotificationView(**dict(email)))


@router.post("/imports/{job_id}/confirm", responses=responses(404, 409, 503))
async def confirm(job_id: UUID, rt: RuntimeDep, caller: CallerDep) -> JobView:
    """Confirm a job awaiting confirmation: its valid rows are applied."""
    await access.job_of(rt, caller, job_id)
    job = await commands.confirm(rt, job_id, caller.requester)
    if job is None:
        raise import_not_found()
    if job.confirmed_at is None:
        raise ApiError(
            409,
            "not_awaiting_confirmation",
            f"The import is {job.state.value} and cannot be confirmed.",
            {"state": job.state.value},
        )
    return JobView.of(job)


@router.post(
    "/imports/{job_id}/column-mapping", status_code=202, responses=responses(404, 409, 503)
)
async def map_columns(
    job_id: UUID, body: ColumnMappingRequest, rt: RuntimeDep, caller: CallerDep
) -> JobView:
    """Map the file's columns and check the same file again, without uploading it again.

    For a job whose header did not name the format's columns (failed with
    ``file_missing_column``, ``file_no_header``, ``file_wrong_format``,
    ``file_org_not_mapped`` or ``file_repeated_column``, with the job's
    ``column_mapping``) or one awaiting confirmation. A name the header has
    more than once is mapped with a list: one entry per column of that name.
    The mapping is remembered for the unit, the format and this header: the
    next file with the same header is read with it. The check runs as a new
    job on the stored file (the answer); this one is superseded by it.
    """
    job = await access.job_of(rt, caller, job_id)
    header = (job.column_mapping or {}).get("header") or []
    unknown = sorted(set(body.columns) - set(header))
    if unknown:
        raise ApiError(
            422,
            "column_not_in_header",
            "Map only columns the file's header has.",
            {"columns": unknown[:20]},
        )
    chosen: list[str | None] = []
    for name, column in body.columns.items():
        named = columns_named(header, name)
        if isinstance(column, list):
            if len(column) != len(named):
                raise ApiError(
                    422,
                    "column_count_mismatch",
                    "A list maps each of the header's columns of that name, in order: "
                    "give one entry for each.",
                    {"column": name[:60], "columns": len(named)},
                )
            chosen += column
        else:
            # A name the header repeats is read once for each of its columns.
            chosen += [column] * len(named)
    mapped = [c for c in chosen if c is not None]
    if len(mapped) != len(set(mapped)):
        raise ApiError(422, "column_mapped_twice", "Map each column of the roster once.")
    try:
        again = await commands.remap(
            rt, job, dict(body.columns), body.org_sourced_id, caller.requester
        )
    except commands.NotRemappable as exc:
        raise ApiError(
            409,
            "not_remappable",
            f"The import is {job.state.value}; only a file whose columns were not recognised, "
            "or one awaiting confirmation, is checked again with a mapping.",
            {"state": job.state.value},
        ) from exc
    except commands.PipelineUnavailable as exc:
        raise ApiError(
            503,
            "pipeline_unavailable",
            "The import pipeline cannot be reached; the check was not started. Try again.",
            **{"Retry-After": "30"},
        ) from exc
    return JobView.of(again)


@router.post("/imports/{job_id}/cancel", responses=responses(404, 503))
async def cancel(job_id: UUID, rt: RuntimeDep, caller: CallerDep) -> JobView:
    """Cancel wherever the job is; a job that has ended answers with its final state."""
    await access.job_of(rt, caller, job_id)
    job = await commands.cancel(rt, job_id, caller.requester, broadcast=True)
    if job is None:
        raise import_not_found()
    return JobView.of(job)


@router.post("/imports/{job_id}/archive/approve", responses=responses(404, 409, 503))
async def approve_archive(job_id: UUID, rt: RuntimeDep, caller: CallerDep) -> JobView:
    """Approve a held archive: the archiver archives and completes the job."""
    await access.job_of(rt, caller, job_id)
    return _decided(await commands.decide_archive(rt, job_id, True, caller.requester), "approved")


@router.post("/imports/{job_id}/archive/decline", responses=responses(404, 409, 503))
async def decline_archive(job_id: UUID, rt: RuntimeDep, caller: CallerDep) -> JobView:
    """Finish a held job without archiving anybody."""
    await access.job_of(rt, caller, job_id)
    return _decided(await commands.decide_archive(rt, job_id, False, caller.requester), "declined")


@router.post("/imports/{job_id}/archive/undo", responses=responses(404, 409, 503))
async def undo_archive(job_id: UUID, rt: RuntimeDep, caller: CallerDep) -> JobView:
    """Re-activate exactly the patients this import archived and nobody archived since."""
    await access.job_of(rt, caller, job_id)
    job = await commands.undo_archive(rt, job_id, caller.requester)
    if job is None:
        raise import_not_found()
    if job.archive_undone_count is None:
        raise ApiError(
            409, "undo_not_possible", "Only a completed import that archived patients is undone."
        )
    return JobView.of(job)


def _decided(job: jobs.Job | None, decision: str) -> JobView:
    if job is None:
        raise import_not_found()
    if job.archive_decision is None:
        raise ApiError(409, "archive_not_held", "The import's archive is not held for a decision.")
    if job.archive_decision != decision:
        raise ApiError(
            409, "archive_already_decided", f"The archive was already {job.archive_decision}."
        )
    return JobView.of(job)
