"""Steps 1 and 2: the import's information, then the file's upload."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import unquote
from uuid import UUID

from fastapi import APIRouter, Header, Query
from fastapi.responses import HTMLResponse, JSONResponse

from rosterflow import events
from services.ingest import access
from services.ingest.logic import upper_secondary_allowed
from services.ingest.routes import imports as api_imports
from services.ingest.web import store
from services.ingest.web.frame import PREFIX, UiDep

router = APIRouter(prefix=PREFIX + "/new")

# What the file chooser offers per format, and what the page checks before uploading.
ACCEPT = {
    events.FileFormat.ROSTERFLOW_CSV: ".csv,.txt",
    events.FileFormat.ROSTERFLOW_XLSX: ".xlsx",
    events.FileFormat.SCHOOLSOFT: ".csv,.txt,.xlsx",
    events.FileFormat.SCHOOLSOFT_DAT: ".dat,.txt,.csv",
    events.FileFormat.SCHOOLSOFT_GUARDIANS: ".csv,.txt,.xlsx",
    events.FileFormat.ONEROSTER: ".zip",
}
FORMAT_NAMES = {
    events.FileFormat.ROSTERFLOW_CSV: "rosterflow CSV",
    events.FileFormat.ROSTERFLOW_XLSX: "rosterflow Excel (XLSX)",
    events.FileFormat.SCHOOLSOFT: "SchoolSoft (CSV/XLSX)",
    events.FileFormat.SCHOOLSOFT_DAT: "SchoolSoft .dat (IST-format)",
    events.FileFormat.SCHOOLSOFT_GUARDIANS: "SchoolSoft vårdnadshavare (CSV/XLSX)",
    events.FileFormat.ONEROSTER: "OneRoster 1.1/1.2 (zip)",
}
SchoolYear = Annotated[str | None, Query(pattern=events.SCHOOL_YEAR_PATTERN)]


def school_years() -> tuple[str, list[str]]:
    current = events.school_year_of(datetime.now().astimezone())
    start = int(current[:4])
    return current, [f"{y}/{y + 1}" for y in (start - 1, start, start + 1)]


@router.get("", response_class=HTMLResponse)
async def step1(
    ui: UiDep,
    unit_id: UUID | None = None,
    school_year: SchoolYear = None,
    format: events.FileFormat = events.FileFormat.ROSTERFLOW_CSV,
    archive_missing: bool = False,
    treat_as_upper_secondary: bool = False,
) -> HTMLResponse:
    async with ui.rt.pool.acquire() as conn:
        units = await store.units_of(conn, ui.session.organisations())
    current, years = school_years()
    return ui.render(
        "step1.html",
        step=1,
        units=units,
        chosen_unit=unit_id,
        school_year=school_year or current,
        years=years,
        formats=FORMAT_NAMES,
        format=format,
        archive_missing=archive_missing,
        treat_as_upper_secondary=treat_as_upper_secondary,
    )


@router.get("/upload", response_class=HTMLResponse)
async def step2(
    ui: UiDep,
    unit_id: UUID,
    school_year: SchoolYear = None,
    format: events.FileFormat = events.FileFormat.ROSTERFLOW_CSV,
    archive_missing: bool = False,
    treat_as_upper_secondary: bool = False,
) -> HTMLResponse:
    unit = await access.unit_of(ui.rt, ui.caller, unit_id)
    current, _ = school_years()
    return ui.render(
        "step2.html",
        step=2,
        unit=unit,
        school_year=school_year or current,
        format=format,
        format_name=FORMAT_NAMES[format],
        accept=ACCEPT[format],
        archive_missing=archive_missing,
        treat_as_upper_secondary=treat_as_upper_secondary and upper_secondary_allowed(unit),
        limit_bytes=ui.rt.settings.storage.max_upload_bytes,
        query=ui.request.url.query,
    )


@router.post("/upload")
async def upload(
    ui: UiDep,
    unit_id: UUID,
    file_name: Annotated[str, Header(alias="x-file-name", min_length=1, max_length=765)],
    school_year: SchoolYear = None,
    format: events.FileFormat = events.FileFormat.ROSTERFLOW_CSV,
    archive_missing: bool = False,
    treat_as_upper_secondary: bool = False,
) -> JSONResponse:
    """The page's script streams the file here; the API's upload takes it from there.
    The file's name rides in a header, never in the address."""
    ui.check_header()
    unit = await access.unit_of(ui.rt, ui.caller, unit_id, status=422)
    job = await api_imports.upload(
        ui.request,
        ui.rt,
        ui.caller,
        organisation_id=unit.organisation_id,
        unit_id=unit_id,
        file_name=unquote(file_name)[:255],
        school_year=school_year,
        format=format,
        archive_missing=archive_missing,
        treat_as_upper_secondary=treat_as_upper_secondary,
    )
    return JSONResponse(
        {"id": str(job.id), "state": job.state.value, "url": f"{PREFIX}/imports/{job.id}"},
        status_code=202,
    )
