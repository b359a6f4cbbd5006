"""The check result of a job: valid rows, invalid rows, the plan."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from rosterflow.jobs import CheckResult, Job
from rosterflow.storage import StorageError
from services.ingest import access, reports
from services.ingest.access import RuntimeDep
from services.ingest.auth import CallerDep
from services.ingest.errors import ApiError, responses
from services.ingest.views import ArchiveCandidate, IssueRow, Page, PlanView, ValidRow

router = APIRouter(prefix="/v1/imports/{job_id}", tags=["check result"])

Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=1000)]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


def _check(job: Job) -> CheckResult:
    if job.check_result is None:
        raise ApiError(
            409,
            "check_not_ready",
            f"The import is {job.state.value}; it has no check result.",
            {"state": job.state.value},
        )
    return job.check_result


async def _read(call: Any, *args: Any, **kwargs: Any) -> tuple[int, list[dict[str, Any]]]:
    try:
        result: tuple[int, list[dict[str, Any]]] = await asyncio.to_thread(call, *args, **kwargs)
    except StorageError as exc:
        raise ApiError(
            410, "report_gone", "The check report is no longer kept (retention period)."
        ) from exc
    return result


@router.get("/rows/valid", responses=responses(404, 409, 410))
async def valid_rows(
    job_id: UUID, rt: RuntimeDep, caller: CallerDep, offset: Offset = 0, limit: Limit = 100
) -> Page[ValidRow]:
    """What the import applies, in file order."""
    job = await access.job_of(rt, caller, job_id)
    key = _check(job).report.valid_rows_key
    total, rows = await _read(reports.page, rt.store, key, offset, limit)
    return Page(total=total, offset=offset, limit=limit, items=[ValidRow.of(r) for r in rows])


@router.get("/rows/invalid", responses=responses(404, 409, 410))
async def invalid_rows(
    job_id: UUID,
    rt: RuntimeDep,
    caller: CallerDep,
    code: Annotated[list[str] | None, Query(max_length=50)] = None,
    severity: Severity | None = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> Page[IssueRow]:
    """Invalid rows and warnings (line, column, code, reason), in line order; filter by code."""
    job = await access.job_of(rt, caller, job_id)
    total, rows = await _read(
        reports.filtered_page,
        rt.store,
        _check(job).report.invalid_rows_key,
        offset,
        limit,
        codes=code,
        severity=None if severity is None else severity.value,
    )
    return Page(total=total, offset=offset, limit=limit, items=[IssueRow(**r) for r in rows])


@router.get("/plan", responses=responses(404, 409, 410))
async def plan(
    job_id: UUID, rt: RuntimeDep, caller: CallerDep, offset: Offset = 0, limit: Limit = 100
) -> PlanView:
    """Who would be created, updated, re-activated and archived, and whether archiving is held."""
    job = await access.job_of(rt, caller, job_id)
    check = _check(job)
    counts = check.plan
    candidates: Page[ArchiveCandidate] | None = None
    key = check.report.archive_candidates_key
    if key:
        total, rows = await _read(reports.page, rt.store, key, offset, limit)
        candidates = Page(
            total=total, offset=offset, limit=limit, items=[ArchiveCandidate(**r) for r in rows]
        )
    return PlanView(**counts.model_dump(), archive_candidates=candidates)
