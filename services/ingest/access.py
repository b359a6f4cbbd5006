"""Who may see what: every lookup goes through the caller's organisations."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request

from rosterflow import jobs
from rosterflow.jobs import Job
from rosterflow.runtime import Runtime
from services.ingest import store
from services.ingest.auth import Caller
from services.ingest.errors import ApiError, import_not_found, unit_not_found
from services.ingest.logic import Unit


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


async def job_of(rt: Runtime, caller: Caller, job_id: UUID) -> Job:
    """The caller's job; another organisation's answers exactly like a missing one."""
    async with rt.pool.acquire() as conn:
        job = await jobs.get(conn, job_id)
    if job is None or not caller.administers(job.organisation_id):
        raise import_not_found()
    return job


async def unit_of(rt: Runtime, caller: Caller, unit_id: UUID, status: int = 404) -> Unit:
    async with rt.pool.acquire() as conn:
        unit = await store.get_unit(conn, unit_id)
    if unit is None or not caller.administers(unit.organisation_id):
        raise unit_not_found(status)
    return unit


def organisation(caller: Caller, organisation_id: UUID) -> None:
    if not caller.administers(organisation_id):
        raise ApiError(
            403, "organisation_forbidden", "You are not an administrator of this organisation."
        )
