"""The API's error body and codes: every 4xx/5xx answers the same shape.

``{"error": {"code": "file_too_large", "message": "…", "details": …}}`` — the
platform branches on ``code`` (stable, snake_case); ``message`` is for people.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: Any = None, **headers: str
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def import_not_found() -> ApiError:
    # Another organisation's job answers exactly like a job that does not exist.
    return ApiError(404, "import_not_found", "There is no such import.")


def unit_not_found(status: int = 404) -> ApiError:
    return ApiError(status, "unit_not_found", "The unit does not exist in this organisation.")


# Query parameters whose malformed values get a code of their own.
_PARAMETER_CODES = {
    ("query", "school_year"): ("school_year_malformed", "A school year looks like 2026/2027."),
    ("query", "format"): ("format_not_supported", "This file format is not supported."),
}
_STATUS_CODES = {
    400: "body_unparsable",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    415: "unsupported_media_type",
}


def _body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return ErrorBody(error=ErrorDetail(code=code, message=message, details=details)).model_dump(
        mode="json"
    )


async def api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(
        _body(exc.code, exc.message, exc.details), status_code=exc.status, headers=exc.headers
    )


async def invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Never echo the input: a query or body may hold an identity number.
    problems = [
        {"location": [str(part) for part in e["loc"]], "message": e["msg"], "type": e["type"]}
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in exc.errors()):
        return _unparsable()
    for problem in exc.errors():
        known = _PARAMETER_CODES.get(tuple(problem["loc"][:2]))
        if known is not None:
            return JSONResponse(_body(*known, problems), status_code=422)
    return JSONResponse(
        _body("invalid_request", "The request is not valid.", problems), status_code=422
    )


def _unparsable() -> JSONResponse:
    return JSONResponse(
        _body("body_unparsable", "The request body is not valid JSON (UTF-8)."), status_code=400
    )


def _allowed(request: Request) -> str:
    """Every method the API document gives this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {m.upper() for m in operations}
    return ", ".join(sorted(methods))


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's answer to a body it cannot decode (e.g. not UTF-8).
        return _unparsable()
    code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed(request)
    return JSONResponse(_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)


# The answers every authenticated endpoint may give, for the OpenAPI document.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid bearer token"},
    403: {"model": ErrorBody, "description": "The caller administers no such organisation"},
    422: {"model": ErrorBody, "description": "The request is not valid"},
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "The request body is not valid JSON (UTF-8): body_unparsable",
        404: "Not found (or another organisation's)",
        409: "Not possible in the job's current state",
        410: "The check report is no longer kept",
        413: "The file is too large",
        503: "The pipeline cannot be reached; try again",
    }
    return {
        **AUTH_RESPONSES,
        **{s: {"model": ErrorBody, "description": described[s]} for s in statuses},
    }
