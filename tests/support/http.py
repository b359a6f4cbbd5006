"""The ingest API in this process, for tests: the real app on the real stack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from fastapi import FastAPI

from rosterflow.runtime import Runtime
from rosterflow.settings import Settings
from rosterflow.testing import bearer, mint_token, wait_for
from services.ingest.app import create_app


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        rt: Runtime = self.app.state.runtime
        return rt

    @staticmethod
    def admin_of(*organisations: UUID, **claims: str) -> dict[str, str]:
        return bearer(mint_token(list(organisations), **claims))  # type: ignore[arg-type]


@asynccontextmanager
async def ingest_api(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            yield Api(app, client)


async def poll(client: httpx.AsyncClient, job_id: str, states: set[str]) -> dict[str, Any]:
    """The job (``GET /v1/imports/{job_id}``) once it is in one of ``states``."""

    async def probe() -> dict[str, Any] | None:
        job: dict[str, Any] = (await client.get(f"/v1/imports/{job_id}")).json()
        return job if job["state"] in states else None

    return await wait_for(probe, within=60, what=f"job {job_id} reaching {states}")
