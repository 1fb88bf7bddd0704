"""The OpenAPI document, made true to what the API answers, so a generated client works.

FastAPI documents its own 422 body (``detail`` as a list) and none of the errors the handlers
send. Here every operation gets: the 422 body we send (``error``, ``detail`` as a sentence,
``errors``); 401 and 403 where a token is needed; 404 where a path names a resource; 503 (the
database is away) and 500 in the same shape (``default``); and ``text/csv`` beside JSON where
``format=csv`` is accepted.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR = {
    "title": "Error",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "A stable code, e.g. not_found."},
        "detail": {"type": "string", "description": "What went wrong, in one sentence."},
    },
}
VALIDATION_ERROR = {
    "title": "ValidationError",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "enum": ["invalid_input"]},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": ["string", "null"]},
                },
            },
        },
    },
}
_REF = {"$ref": "#/components/schemas/Error"}
NO_NUL = "^[^\\u0000]*$"
_MEDIA = {"csv": "text/csv", "html": "text/html"}  # format=... answered as this


def _response(description: str, schema: dict[str, Any] = _REF) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def install(app: FastAPI, *, reasons: list[str], categories: list[str], min_password: int) -> None:
    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = true_document(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                ),
                reasons=reasons,
                categories=categories,
                min_password=min_password,
            )
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]


def true_document(
    document: dict[str, Any], *, reasons: list[str], categories: list[str], min_password: int
) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR
    schemas["HTTPValidationError"] = VALIDATION_ERROR
    schemas.pop("ValidationError", None)
    _limits(schemas, reasons=reasons, categories=categories, min_password=min_password)
    for name, schema in schemas.items():
        if name.endswith(("In", "Create", "Update", "Patch")) or name.startswith("Body_"):
            _no_nul(schema)
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            _responses(path, operation)
            for parameter in operation.get("parameters", []):
                _not_null(parameter)
                _no_nul(parameter.get("schema", {}))
    return document


def _responses(path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    for response in responses.values():  # our 422 body, wherever FastAPI put its own
        for media in response.get("content", {}).values():
            if media.get("schema") == {"$ref": "#/components/schemas/HTTPValidationError"}:
                response["description"] = "The request is not valid: which field and why."
    if "422" not in responses:
        responses["422"] = _response(
            "The request is not valid: which field and why.",
            {"$ref": "#/components/schemas/HTTPValidationError"},
        )
    if operation.get("security"):
        responses.setdefault("401", _response("No valid token (WWW-Authenticate: Bearer)."))
        responses.setdefault("403", _response("The token's user may not do this."))
    if "{" in path:
        responses.setdefault("404", _response("No such resource."))
    responses.setdefault("409", _response("A conflict: a stale version or a duplicate."))
    responses.setdefault(
        "default", _response("Any other error (503: the database is away; 500), this shape.")
    )
    for parameter in operation.get("parameters", []):
        if parameter.get("name") != "format":
            continue
        schema = parameter.get("schema", {})
        formats = schema.get("enum") or [
            v for branch in schema.get("anyOf", []) for v in branch.get("enum", [])
        ]
        content = responses.setdefault("200", {}).setdefault("content", {})
        for name in formats:
            if name in _MEDIA:
                content[_MEDIA[name]] = {"schema": {"type": "string"}}


def _no_nul(schema: dict[str, Any]) -> None:
    """Free text the API takes never holds NUL (callcenter/api/nul.py refuses it)."""
    if schema.get("type") == "string" and not ({"enum", "pattern", "const"} & set(schema)):
        schema["pattern"] = NO_NUL
    for branch in schema.get("anyOf", []):
        _no_nul(branch)
    for item in schema.get("properties", {}).values():
        _no_nul(item)
    if isinstance(schema.get("items"), dict):
        _no_nul(schema["items"])


def _not_null(parameter: dict[str, Any]) -> None:
    """A query or header parameter is sent or left out, never null: FastAPI's ``anyOf [..,
    null]`` for an optional one made clients send the text "null"."""
    schema = parameter.get("schema", {})
    branches = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(branches) == 1 and len(branches) < len(schema["anyOf"]):
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        parameter["schema"] = {**branches[0], **rest}


def _limits(
    schemas: dict[str, Any], *, reasons: list[str], categories: list[str], min_password: int
) -> None:
    """What the services enforce, said in the schema (so a client can check first)."""
    create = schemas.get("UserCreate", {}).get("properties", {})
    if "password" in create:
        create["password"]["minLength"] = min_password
    if "username" in create:  # stripped by the service: something must be left
        create["username"]["pattern"] = "^[^\\u0000]*[^\\s\\u0000\\u001c-\\u001f][^\\u0000]*$"
    incident = schemas.get("IncidentIn", {}).get("properties", {})
    if "category" in incident and categories:
        incident["category"] = {"type": "string", "enum": categories, "title": "Category"}
    classification = schemas.get("ClassificationIn", {}).get("properties", {})
    if "reason" in classification and reasons:
        classification["reason"] = {
            "anyOf": [{"type": "string", "enum": reasons}, {"type": "null"}],
            "description": "One of the configured classification reasons, or null.",
        }
    for name, schema in schemas.items():
        if name.startswith("Body_") and "token" in name:
            for field in ("username", "password"):
                if field in schema.get("properties", {}):
                    schema["properties"][field]["minLength"] = 1
