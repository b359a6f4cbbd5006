"""The administrator's wizard: server-rendered pages under /ui.

The pages call the HTTP API's own route functions with the session's caller,
so every rule (who may see what, what a state allows) is the API's.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from rosterflow.settings import UiSettings
from services.ingest.web import job, organisation, signin, wizard
from services.ingest.web.frame import PREFIX, SecurityHeaders, install_errors
from services.ingest.web.session import Sessions

ROUTERS = (signin.router, organisation.router, wizard.router, job.router)


def mount(app: FastAPI, settings: UiSettings) -> None:
    app.state.ui_sessions = Sessions(settings)
    install_errors(app)
    for router in ROUTERS:
        app.include_router(router, include_in_schema=False)
    app.mount(
        PREFIX + "/static",
        StaticFiles(directory=Path(__file__).with_name("static")),
        name="ui-static",
    )
    app.add_middleware(SecurityHeaders, frame_ancestors=settings.frame_ancestors)
