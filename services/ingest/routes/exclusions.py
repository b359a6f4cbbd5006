"""A unit's archive exclusions: patients an archive import never archives."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from services.ingest import access, store
from services.ingest.access import RuntimeDep
from services.ingest.auth import CallerDep
from services.ingest.errors import ApiError, responses
from services.ingest.views import Exclusion, NewExclusion, Page

router = APIRouter(prefix="/v1/units/{unit_id}/archive-exclusions", tags=["archive exclusions"])


@router.get("", responses=responses(404))
async def list_exclusions(
    unit_id: UUID,
    rt: RuntimeDep,
    caller: CallerDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[Exclusion]:
    await access.unit_of(rt, caller, unit_id)
    async with rt.pool.acquire() as conn:
        rows = await conn.fetch(store.EXCLUSIONS, unit_id, offset, limit)
        total = await conn.fetchval(
            "SELECT count(*) FROM archive_exclusions WHERE unit_id = $1", unit_id
        )
    items = [Exclusion(**{k: r[k] for k in Exclusion.model_fields}) for r in rows]
    return Page(total=total, offset=offset, limit=limit, items=items)


@router.post("", status_code=201, responses=responses(400, 404))
async def add_exclusion(
    unit_id: UUID, body: NewExclusion, rt: RuntimeDep, caller: CallerDep
) -> Exclusion:
    """Exclude a patient of the organisation from archive imports in this unit (idempotent)."""
    unit = await access.unit_of(rt, caller, unit_id)
    async with rt.pool.acquire() as conn, conn.transaction():
        patient_id = await conn.fetchval(
            store.ADD_EXCLUSION,
            unit_id,
            unit.organisation_id,
            body.identity_number,
            caller.requester.user_id,
        )
        if patient_id is None:
            raise ApiError(
                404,
                "patient_not_found",
                "No such patient in the organisation.",
            )
    async with rt.pool.acquire() as conn:
        row = await conn.fetchrow(store.EXCLUSION, unit_id, patient_id)
    assert row is not None  # added (or already there) in the transaction above
    return Exclusion(**dict(row))


@router.delete("/{patient_id}", status_code=204, responses=responses(404))
async def remove_exclusion(
    unit_id: UUID, patient_id: UUID, rt: RuntimeDep, caller: CallerDep
) -> Response:
    await access.unit_of(rt, caller, unit_id)
    async with rt.pool.acquire() as conn:
        removed = await conn.fetchval(store.REMOVE_EXCLUSION, unit_id, patient_id)
    if removed is None:
        raise ApiError(404, "exclusion_not_found", "The patient is not excluded in this unit.")
    return Response(status_code=204)
