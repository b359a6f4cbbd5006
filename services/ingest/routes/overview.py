"""The organisation overview: every import of the organisation, newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from rosterflow.jobs import JobState
from services.ingest import access, store
from services.ingest.access import RuntimeDep
from services.ingest.auth import CallerDep
from services.ingest.errors import responses
from services.ingest.views import OverviewItem, Page, RequesterView

router = APIRouter(prefix="/v1/organisations/{organisation_id}", tags=["overview"])


@router.get("/imports", responses=responses())
async def overview(
    organisation_id: UUID,
    rt: RuntimeDep,
    caller: CallerDep,
    unit_id: UUID | None = None,
    state: Annotated[list[JobState] | None, Query(max_length=20)] = None,
    received_from: Annotated[datetime | None, Query(description="inclusive")] = None,
    received_before: Annotated[datetime | None, Query(description="exclusive")] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[OverviewItem]:
    """Who, when, unit, school year, file, format, options, state, counts, duration."""
    access.organisation(caller, organisation_id)
    filters = (
        organisation_id,
        unit_id,
        None if not state else [s.value for s in state],
        received_from,
        received_before,
    )
    async with rt.pool.acquire() as conn:
        rows = await conn.fetch(store.OVERVIEW, *filters, offset, limit)
        total = await conn.fetchval(store.OVERVIEW_COUNT, *filters)
    return Page(total=total, offset=offset, limit=limit, items=[_item(dict(r)) for r in rows])


def _item(row: dict[str, Any]) -> OverviewItem:
    counts = (row["check_result"] or {}).get("counts", {})
    end = row["finished_at"] or datetime.now(UTC)
    return OverviewItem(
        **{k: row[k] for k in OverviewItem.model_fields if k in row},
        requested_by=RequesterView(user_id=row["requested_by_id"], name=row["requested_by_name"]),
        duration_seconds=round((end - row["received_at"]).total_seconds(), 3),
        rows=counts.get("rows"),
        valid=counts.get("valid"),
        invalid=counts.get("invalid"),
        imported=row["import_counts"],
        archived=row["archived_count"],
    )
