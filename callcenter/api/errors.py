"""Every error the API answers has one JSON shape: ``{"error": code, "detail": sentence}``.

Domain errors (callcenter/errors.py) and request validation (callcenter/api/validation.py) have
their handlers; this module covers the rest: Starlette's own 404 (unknown route) and 405 (its
``Allow`` header kept), a database that cannot be reached (503, not a plain 500), and any other
failure (500, without the exception's text, which may hold data).
"""

from __future__ import annotations

import logging
import re

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}
_SENTENCES = {
    404: "no such resource: see /docs for the API's routes",
    405: "this method is not allowed here: the Allow header lists those that are",
}
UNAVAILABLE = "the database is unavailable; try again shortly"


def error_body(status: int, detail: str) -> dict[str, str]:
    return {"error": _CODES.get(status, "http_error"), "detail": detail}


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else ""
    if exc.status_code in _SENTENCES and detail in ("", "Not Found", "Method Not Allowed"):
        detail = _SENTENCES[exc.status_code]
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return JSONResponse(
        error_body(exc.status_code, detail or "request refused"),
        status_code=exc.status_code,
        headers=headers,
    )


def allowed_methods(request: Request) -> str:
    """Every method the API document lists at this path (Starlette names only those of the
    first route that matched, and this app has several routes at one path)."""
    methods: set[str] = set()
    for template, item in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {method.upper() for method in item}
    return ", ".join(sorted(methods))


async def database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    log.error("database unavailable: %s", type(exc).__name__)
    return JSONResponse(error_body(503, UNAVAILABLE), status_code=503, headers={"Retry-After": "5"})


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    """A DBAPI error of another kind: a lost connection is still 503, the rest 500."""
    assert isinstance(exc, DBAPIError)
    if exc.connection_invalidated or isinstance(exc.orig, psycopg.OperationalError):
        return await database_unavailable(request, exc)
    return await internal_error(request, exc)


async def internal_error(_request: Request, exc: Exception) -> JSONResponse:
    log.error("internal error: %s", type(exc).__name__, exc_info=exc)
    return JSONResponse(
        error_body(500, "internal error: the request was not completed"), status_code=500
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(OperationalError, database_unavailable)
    app.add_exception_handler(InterfaceError, database_unavailable)
    app.add_exception_handler(psycopg.OperationalError, database_unavailable)
    app.add_exception_handler(DBAPIError, database_error)
    app.add_exception_handler(Exception, internal_error)
