"""The organisation overview and the units' archive exclusions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, TypeVar
from uuid import UUID

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from rosterflow.jobs import JobState
from services.ingest.errors import ApiError
from services.ingest.routes import exclusions as api_exclusions
from services.ingest.routes import overview as api_overview
from services.ingest.views import NewExclusion
from services.ingest.web import store
from services.ingest.web.frame import PREFIX, UiDep

router = APIRouter(prefix=PREFIX)

T = TypeVar("T")
PAGE_ROWS = 50
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


def _day_start(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time.min, tzinfo=UTC)


def _chosen(value: str, kind: Callable[[str], T]) -> T | None:
    """A filter's value; a form sends an unused filter as an empty field."""
    if not value:
        return None
    try:
        return kind(value)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", "A filter's value is not valid.") from exc


@router.get("/", response_class=HTMLResponse)
async def overview(
    ui: UiDep,
    organisation: Annotated[str, Query(alias="organisation_id", max_length=40)] = "",
    unit: Annotated[str, Query(alias="unit_id", max_length=40)] = "",
    state_filter: Annotated[str, Query(alias="state", max_length=40)] = "",
    since: Annotated[str, Query(alias="received_from", max_length=10)] = "",
    until_day: Annotated[str, Query(alias="received_until", max_length=10)] = "",
    offset: Offset = 0,
) -> HTMLResponse:
    """Every import of the organisation, newest first, filtered by unit, state and days."""
    organisation_id = _chosen(organisation, UUID)
    unit_id = _chosen(unit, UUID)
    state = _chosen(state_filter, JobState)
    received_from = _chosen(since, date.fromisoformat)
    received_until = _chosen(until_day, date.fromisoformat)
    organisations = ui.session.organisations()
    chosen = organisation_id if organisation_id in organisations else organisations[0]
    async with ui.rt.pool.acquire() as conn:
        units = await store.units_of(conn, [chosen])
        names = await store.organisation_names(conn, organisations)
    until = None if received_until is None else received_until + timedelta(days=1)
    imports = await api_overview.overview(
        chosen,
        ui.rt,
        ui.caller,
        unit_id=unit_id,
        state=None if state is None else [state],
        received_from=_day_start(received_from),
        received_before=_day_start(until),
        offset=offset,
        limit=PAGE_ROWS,
    )
    return ui.render(
        "overview.html",
        organisations=organisations,
        organisation_names=names,
        organisation_id=chosen,
        units=units,
        unit_id=unit_id,
        states=list(JobState),
        state=None if state is None else state.value,
        received_from=received_from,
        received_until=received_until,
        imports=imports,
        page_rows=PAGE_ROWS,
    )


@router.get("/exclusions", response_class=HTMLResponse)
async def exclusions(
    ui: UiDep, unit_id: UUID | None = None, offset: Offset = 0, problem: str | None = None
) -> HTMLResponse:
    async with ui.rt.pool.acquire() as conn:
        units = await store.units_of(conn, ui.session.organisations())
    chosen = unit_id or (units[0].id if units else None)
    listed = None
    if chosen is not None:
        listed = await api_exclusions.list_exclusions(
            chosen, ui.rt, ui.caller, offset=offset, limit=PAGE_ROWS
        )
    return ui.render(
        "exclusions.html",
        units=units,
        unit_id=chosen,
        exclusions=listed,
        page_rows=PAGE_ROWS,
        problem=problem if problem in ("identity_malformed", "patient_not_found") else None,
    )


@router.post("/exclusions/{unit_id}/add")
async def add_exclusion(
    ui: UiDep, unit_id: UUID, identity_number: Annotated[str, Form(max_length=40)]
) -> Response:
    await ui.form()
    back = f"{PREFIX}/exclusions?unit_id={unit_id}"
    typed = "".join(identity_number.split()).replace("-", "").replace("+", "").upper()
    try:
        body = NewExclusion(identity_number=typed)
    except ValidationError:
        return RedirectResponse(f"{back}&problem=identity_malformed", status_code=303)
    try:
        await api_exclusions.add_exclusion(unit_id, body, ui.rt, ui.caller)
    except ApiError as exc:
        if exc.code != "patient_not_found":
            raise
        return RedirectResponse(f"{back}&problem=patient_not_found", status_code=303)
    return RedirectResponse(back, status_code=303)


@router.post("/exclusions/{unit_id}/{patient_id}/remove")
async def remove_exclusion(ui: UiDep, unit_id: UUID, patient_id: UUID) -> Response:
    await ui.form()
    try:
        await api_exclusions.remove_exclusion(unit_id, patient_id, ui.rt, ui.caller)
    except ApiError as exc:
        if exc.code != "exclusion_not_found":
            raise
    return RedirectResponse(f"{PREFIX}/exclusions?unit_id={unit_id}", status_code=303)
