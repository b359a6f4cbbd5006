"""What every page shares: the session dependency, rendering, errors, headers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rosterflow.runtime import Runtime
from services.ingest import errors
from services.ingest.auth import Caller
from services.ingest.errors import ApiError
from services.ingest.web import i18n
from services.ingest.web.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    CsrfRefused,
    NotSignedIn,
    Session,
    Sessions,
    check_csrf,
)

PREFIX = "/ui"
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
templates.env.globals["reason"] = i18n.reason

# Pages that answer JSON to the pages' own script, not HTML.
_JSON_SUFFIXES = (".json", "/upload")


@dataclass
class Ui:
    request: Request
    rt: Runtime
    session: Session

    @property
    def caller(self) -> Caller:
        return self.session.caller

    @property
    def language(self) -> str:
        return self.session.language

    def t(self, key: str, **values: object) -> str:
        return i18n.text(self.language, key, **values)

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return page(self.request, template, self.session, status, **context)

    async def form(self) -> FormData:
        """The posted form, refused without the signed-in user's CSRF token."""
        form = await self.request.form()
        offered = form.get(CSRF_FIELD)
        check_csrf(self.session, offered if isinstance(offered, str) else None)
        return form

    def check_header(self) -> None:
        check_csrf(self.session, self.request.headers.get(CSRF_HEADER))


def page(
    request: Request, template: str, session: Session | None, status: int = 200, **context: Any
) -> HTMLResponse:
    language = session.language if session is not None else "sv"
    return templates.TemplateResponse(
        request,
        template,
        {
            "t": i18n.translator(language),
            "lang": language,
            "session": session,
            "csrf": session.csrf if session is not None else "",
            "csrf_field": CSRF_FIELD,
            "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            **context,
        },
        status_code=status,
    )


def sessions(request: Request) -> Sessions:
    found: Sessions = request.app.state.ui_sessions
    return found


def ui(request: Request) -> Ui:
    return Ui(request, request.app.state.runtime, sessions(request).read(request))


UiDep = Annotated[Ui, Depends(ui)]


def _session_or_none(request: Request) -> Session | None:
    try:
        return sessions(request).read(request)
    except NotSignedIn:
        return None


def _error_page(request: Request, status: int, key: str, detail: str | None = None) -> Response:
    session = _session_or_none(request)
    if request.url.path.endswith(_JSON_SUFFIXES):
        language = session.language if session is not None else "sv"
        body = {"error": {"code": key, "message": detail or i18n.text(language, key)}}
        return JSONResponse(body, status_code=status)
    return page(request, "error.html", session, status, message_key=key, detail=detail)


# The upload's refusals the page says in the user's language.
_UPLOAD_CODES = ("file_empty", "pipeline_unavailable", "option_not_allowed")

# The API's codes the pages say in their own words; others show the API's message.
_API_CODES = {"import_not_found": "not_found", "patient_not_found": "patient_not_found"}


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if not request.url.path.startswith(PREFIX + "/") or request.url.path.endswith(".json"):
        return await errors.api_error(request, exc)
    if request.url.path.endswith("/upload"):
        session = _session_or_none(request)
        language = session.language if session is not None else "sv"
        message = exc.message
        if exc.code == "file_too_large":
            limit = request.app.state.runtime.settings.storage.max_upload_bytes
            message = i18n.text(language, "too_large", mb=limit // 1_000_000)
        elif exc.code in _UPLOAD_CODES:
            message = i18n.text(language, exc.code)
        body = {"error": {"code": exc.code, "message": message}}
        return JSONResponse(body, status_code=exc.status)
    key = _API_CODES.get(exc.code, "error_title")
    detail = None if key in _API_CODES.values() else exc.message
    return _error_page(request, exc.status, key, detail)


async def _invalid(request: Request, exc: Exception) -> Response:
    if not request.url.path.startswith(PREFIX + "/"):
        return await errors.invalid(request, exc)
    # Never echo the input: an address or form may hold an identity number.
    return _error_page(request, 422, "invalid_request")


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not request.url.path.startswith(PREFIX + "/") or exc.status_code != 404:
        return await errors.http_error(request, exc)
    return _error_page(request, 404, "page_not_found")


async def _not_signed_in(request: Request, _: Exception) -> Response:
    return _error_page(request, 401, "signed_out")


async def _csrf(request: Request, _: Exception) -> Response:
    return _error_page(request, 403, "csrf")


def install_errors(app: Any) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(NotSignedIn, _not_signed_in)
    app.add_exception_handler(CsrfRefused, _csrf)


class SecurityHeaders:
    """A strict Content-Security-Policy and no caching for the pages (pure ASGI:
    the upload's body streams through untouched)."""

    def __init__(self, app: ASGIApp, frame_ancestors: str) -> None:
        self.app = app
        self.headers = [
            (
                b"content-security-policy",
                (
                    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                    "connect-src 'self'; form-action 'self'; base-uri 'none'; "
                    f"frame-ancestors {frame_ancestors}"
                ).encode(),
            ),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        static = str(scope["path"]).startswith(PREFIX + "/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(self.headers)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
