"""The HTTP API of the front door, assembled from one router per resource.

Every endpoint needs a bearer token from the journal platform (auth.py) and
acts only within the organisations the caller administers.
"""

from __future__ import annotations

from fastapi import FastAPI

from rosterflow.runtime import Runtime
from services.ingest import errors
from services.ingest.auth import TokenVerifier
from services.ingest.routes import exclusions, imports, overview, results, units

ROUTERS = (imports.router, results.router, overview.router, exclusions.router, units.router)


def mount(app: FastAPI, rt: Runtime) -> None:
    app.state.runtime = rt
    app.state.token_verifier = TokenVerifier(rt.settings.auth)
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
