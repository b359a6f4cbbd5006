"""create_app: the ingest service's only wiring."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from rosterflow.healing import Healer
from rosterflow.ops.http import OpsServer
from rosterflow.runtime import Runtime
from rosterflow.settings import Settings
from services.ingest import api, handlers, openapi, web

SERVICE = "ingest"


def create_app(settings: Settings) -> FastAPI:
    rt = Runtime(settings, SERVICE)
    handlers.register(rt)
    # /health, /ready, /metrics on the ops port, as every service: probes and
    # Prometheus reach them, the API's clients do not.
    ops = OpsServer(rt)
    # Stuck jobs are re-driven from here: see rosterflow.healing for why ingest.
    healer = Healer(rt)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await ops.start()
        try:
            await rt.start()
            await rt.broker.start()
            await healer.start()
            try:
                yield
            finally:
                await healer.stop()
                await rt.consumer.commits.stop()
                await rt.broker.stop()
                await rt.stop()
        finally:
            await ops.stop()

    app = FastAPI(
        title=openapi.TITLE,
        version="1",
        description=openapi.DESCRIPTION,
        servers=openapi.SERVERS,
        license_info=openapi.LICENSE,
        lifespan=lifespan,
    )
    api.mount(app, rt)
    # The administrator's pages, on the same rules as the API.
    web.mount(app, settings.ui)
    return app
