"""The job page (steps 3 and 4, the address the email links to) and its actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import ValidationError

from rosterflow.jobs import TERMINAL
from rosterflow.runtime import Runtime
from services.ingest import access, commands
from services.ingest.auth import Caller
from services.ingest.errors import ApiError
from services.ingest.routes import imports as api_imports
from services.ingest.routes import results as api_results
from services.ingest.views import ColumnMappingRequest, JobView, Page
from services.ingest.web import i18n
from services.ingest.web.frame import PREFIX, Ui, UiDep
from services.validator.header import CANONICAL
from services.validator.mapping import columns_named

router = APIRouter(prefix=PREFIX + "/imports/{job_id}")

PAGE_ROWS = 50
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


class Tab(StrEnum):
    VALID = "valid"
    INVALID = "invalid"


def _column_label(ui: Ui, name: str) -> str:
    """A roster column's name in the page's language; the column's own name where the pages
    have no word for it."""
    try:
        return ui.t(f"column_{name}")
    except KeyError:
        return name


def step_of(job: JobView) -> int:
    return 4 if job.timestamps.get("confirmed_at") is not None else 3


async def _pages(
    ui: Ui, job: JobView, tab: Tab, offset: int, code: str | None, archive_offset: int
) -> dict[str, Any]:
    """The report's pages the view shows; none before the check has a report."""
    if not (job.check_result or {}).get("report"):
        return {}
    rt, caller = ui.rt, ui.caller
    try:
        if tab is Tab.VALID:
            rows: Page[Any] = await api_results.valid_rows(job.id, rt, caller, offset, PAGE_ROWS)
        else:
            rows = await api_results.invalid_rows(
                job.id, rt, caller, None if not code else [code], None, offset, PAGE_ROWS
            )
        plan = await api_results.plan(job.id, rt, caller, archive_offset, PAGE_ROWS)
    except ApiError as exc:
        if exc.code == "report_gone":
            return {"report_gone": True}
        raise
    return {"rows": rows, "plan": plan}


@router.get("", response_class=HTMLResponse)
async def job_page(
    ui: UiDep,
    job_id: UUID,
    tab: Tab = Tab.VALID,
    offset: Offset = 0,
    code: Annotated[str | None, Query(max_length=60)] = None,
    aoffset: Offset = 0,
) -> HTMLResponse:
    job = await api_imports.status(job_id, ui.rt, ui.caller)
    unit = await access.unit_of(ui.rt, ui.caller, job.unit_id)
    return ui.render(
        "job.html",
        step=step_of(job),
        job=job,
        unit=unit,
        tab=tab.value,
        code=code or "",
        reasons=i18n.reasons(ui.language),
        terminal=job.state in TERMINAL,
        mappable=commands.remappable(job.state, job.error_code, job.superseded_by),
        canonical_columns=[(name, _column_label(ui, name)) for name in CANONICAL],
        page_rows=PAGE_ROWS,
        **await _pages(ui, job, tab, offset, code, aoffset),
    )


@router.get("/status.json")
async def status_json(ui: UiDep, job_id: UUID) -> JSONResponse:
    """What the page's script polls while the job runs."""
    job = await api_imports.status(job_id, ui.rt, ui.caller)
    progress = job.progress
    return JSONResponse(
        {
            "state": job.state.value,
            "state_text": ui.t(f"state_{job.state.value}"),
            "done": None if progress is None else progress.done,
            "total": None if progress is None else progress.total,
            "cancel_requested": job.cancel_requested,
            "archive_held": job.archive_held,
            "archive_decision": job.archive_decision,
            "terminal": job.state in TERMINAL,
        }
    )


Action = Callable[[UUID, Runtime, Caller], Awaitable[JobView]]
ACTIONS: dict[str, Action] = {
    "confirm": api_imports.confirm,
    "cancel": api_imports.cancel,
    "approve": api_imports.approve_archive,
    "decline": api_imports.decline_archive,
    "undo": api_imports.undo_archive,
}


@router.post("/column-mapping")
async def map_columns(ui: UiDep, job_id: UUID) -> RedirectResponse:
    """The mapping form: each unmatched column's choice (by its position in the header) and,
    for OneRoster, the org; then the new job's page (or this one, when it came too late)."""
    form = await ui.form()
    job = await access.job_of(ui.rt, ui.caller, job_id)
    found = job.column_mapping or {}
    header = found.get("header") or []
    columns: dict[str, Any] = {}
    for entry in found.get("unmatched") or []:
        position = entry["position"]
        chosen = form.get(f"col-{position}")
        if not isinstance(chosen, str) or position >= len(header):
            continue
        named = columns_named(header, header[position])
        if len(named) > 1:
            # A name the header repeats: one choice per column of that name, in order
            # (the column report lists each of them).
            same = columns.setdefault(header[named[0]], [None] * len(named))
            same[named.index(position)] = chosen or None
        else:
            columns[header[position]] = chosen or None
    org = form.get("org")
    try:
        body = ColumnMappingRequest(
            columns=columns, org_sourced_id=org if isinstance(org, str) and org else None
        )
        again = await api_imports.map_columns(job_id, body, ui.rt, ui.caller)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", "The mapping names an unknown column.") from exc
    except ApiError as exc:
        if exc.status != 409:
            raise
        return RedirectResponse(f"{PREFIX}/imports/{job_id}", status_code=303)
    return RedirectResponse(f"{PREFIX}/imports/{again.id}", status_code=303)


@router.post("/{action}")
async def act(ui: UiDep, job_id: UUID, action: str) -> RedirectResponse:
    """Confirm, cancel, decide a held archive or undo it; then the job page again,
    which shows whatever state the job is in (also when the action came too late)."""
    await ui.form()
    run = ACTIONS.get(action)
    if run is None:
        raise ApiError(404, "not_found", "No such action.")
    try:
        await run(job_id, ui.rt, ui.caller)
    except ApiError as exc:
        if exc.status != 409:
            raise
    return RedirectResponse(f"{PREFIX}/imports/{job_id}", status_code=303)
