"""Signing in: the platform hands the user over with its token in a form POST."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from rosterflow import events
from services.ingest.auth import TokenVerifier
from services.ingest.errors import ApiError
from services.ingest.web import store
from services.ingest.web.frame import PREFIX, UiDep, page, sessions

router = APIRouter(prefix=PREFIX)


def safe_target(target: str | None) -> str:
    """Only a path of these pages: never another site."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return PREFIX + "/"


@router.post("/launch")
async def launch(
    request: Request,
    token: Annotated[str | None, Form(max_length=20_000)] = None,
    ticket: Annotated[str | None, Form(max_length=200)] = None,
    next: Annotated[str | None, Form(max_length=500)] = None,
) -> Response:
    """Verify the platform's token exactly as the API does; start a session."""
    if token is None and ticket:
        token = await asyncio.to_thread(
            store.redeem_ticket, request.app.state.runtime.store, ticket
        )
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        if not token:
            raise ApiError(401, "unauthenticated", "A token is required.")
        caller = verifier.verify(token)
    except ApiError:
        return page(request, "error.html", None, 401, message_key="sign_in_refused")
    session = sessions(request).start(caller)
    # A page, not a redirect: after a cross-site POST the browser would not
    # send the SameSite=Strict cookie along a redirect; a same-site reload does.
    response = page(request, "launched.html", session, target=safe_target(next))
    sessions(request).write(response, session)
    return response


@router.get("/signin", response_class=HTMLResponse)
async def signin(request: Request) -> Response:
    """A one-time link's landing page: the ticket rides in the fragment, which the
    browser never sends, and the page's script posts it."""
    return page(request, "signin.html", None)


@router.post("/language")
async def language(
    ui: UiDep, language: Annotated[events.Language, Form()], back: Annotated[str, Form()] = ""
) -> Response:
    await ui.form()
    session = ui.session.with_language(language)
    response = RedirectResponse(safe_target(back), status_code=303)
    sessions(ui.request).write(response, session)
    return response


@router.post("/signout")
async def signout(ui: UiDep) -> Response:
    await ui.form()
    response = page(ui.request, "error.html", None, 200, message_key="signed_out")
    sessions(ui.request).end(response)
    return response
