"""What a unit allows, for step 1 of the wizard."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter

from rosterflow import events
from services.ingest import access
from services.ingest.access import RuntimeDep
from services.ingest.auth import CallerDep
from services.ingest.errors import responses
from services.ingest.logic import SUPPORTED_FORMATS, upper_secondary_allowed
from services.ingest.views import UnitOptions

router = APIRouter(prefix="/v1/units/{unit_id}", tags=["units"])


@router.get("/options", responses=responses(404))
async def options(unit_id: UUID, rt: RuntimeDep, caller: CallerDep) -> UnitOptions:
    """Formats, school years (the current one is the default) and the options the unit allows."""
    unit = await access.unit_of(rt, caller, unit_id)
    current = events.school_year_of(datetime.now().astimezone())
    start = int(current[:4])
    return UnitOptions(
        unit_id=unit.id,
        organisation_id=unit.organisation_id,
        name=unit.name,
        school_level=unit.school_level,
        formats=sorted(f.value for f in SUPPORTED_FORMATS),
        default_school_year=current,
        school_years=[f"{y}/{y + 1}" for y in (start - 1, start, start + 1)],
        archive_missing_allowed=True,
        treat_as_upper_secondary_allowed=upper_secondary_allowed(unit),
    )
