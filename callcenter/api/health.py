"""Liveness and readiness, the two endpoints that need no token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from callcenter.db.migrate import is_at_head

router = APIRouter(tags=["health"])


def add_readiness_probe(app: FastAPI, name: str, probe: Callable[[], str]) -> None:
    """A part that runs beside the API (listener, FastAGI server) says "ok" or why not."""
    probes = getattr(app.state, "readiness_probes", None)
    if probes is None:
        probes = app.state.readiness_probes = {}
    probes[name] = probe


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    engine: Engine = request.app.state.engine
    checks: dict[str, Any] = {}
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        checks["schema"] = "ok" if is_at_head(engine) else "not at head: run `callcenter migrate`"
    except Exception as exc:  # any driver error means "not ready"; say which
        checks["database"] = f"unreachable: {type(exc).__name__}"
    # Other parts (AMI listener, FastAGI server) register a readiness probe on app.state.
    for name, probe in getattr(request.app.state, "readiness_probes", {}).items():
        checks[name] = probe()
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
