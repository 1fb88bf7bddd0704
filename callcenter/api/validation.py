"""Request validation errors (422) in the same shape as the domain errors, and readable.

FastAPI's default lists raw pydantic errors and echoes the input back (a password, for instance);
this says in one sentence which field is wrong and what it accepts, and never echoes the input.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def describe(error: dict[str, Any]) -> dict[str, Any]:
    """One pydantic error as {field, message, type}: ``body.classification``, not a tuple."""
    field = ".".join(str(part) for part in error.get("loc", ()))
    return {"field": field, "message": error.get("msg", "invalid"), "type": error.get("type")}


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [describe(error) for error in exc.errors()]
    if any(e["type"] == "json_invalid" for e in errors):
        # Not pydantic's "JSON decode error" with the position: say it plainly.
        errors = [
            {"field": "body", "message": "malformed JSON", "type": "json_invalid"}
            if e["type"] == "json_invalid"
            else e
            for e in errors
        ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return JSONResponse(
        status_code=422, content={"error": "invalid_input", "detail": detail, "errors": errors}
    )
