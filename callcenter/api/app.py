"""The FastAPI application: engines are built in the lifespan, never at import."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from callcenter.api import auth, errors, health, openapi, validation
from callcenter.api.nul import RefuseNul
from callcenter.api.writes import WriteThreads
from callcenter.callbacks import routes as callback_routes
from callcenter.calls import live_routes
from callcenter.calls import routes as calls_routes
from callcenter.db import make_engine, make_sessionmaker
from callcenter.errors import CallCenterError, ServiceUnavailable
from callcenter.incidents import routes as incident_routes
from callcenter.migrate import is_at_head_or_unreachable
from callcenter.settings import Settings, get_settings
from callcenter.stats import routes as stats_routes
from callcenter.users import routes as users_routes
from callcenter.users.service import MIN_PASSWORD_LENGTH

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url)
        # Unreachable: serve anyway (/readyz says why, requests get 503 until it is back).
        if is_at_head_or_unreachable(engine) is False:
            engine.dispose()
            raise ServiceUnavailable(
                "the database schema is not at the latest migration: run `callcenter migrate`"
            )
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.write_threads = WriteThreads(engine)
        # Startup objects leave the collector's scans: a full collection then takes ~1 ms
        # instead of ~60 ms, which otherwise hit large statistics responses at random.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            app.state.write_threads.close()
            engine.dispose()

    app = FastAPI(
        title="Siaga 112",
        description="Backend of the 112 emergency call center: calls, tagging, incidents, stats.",
        version="0.1.0",
        lifespan=lifespan,
    )

    @app.exception_handler(CallCenterError)
    async def domain_error(_request: Request, exc: CallCenterError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(
            status_code=exc.status_code,
            content={"error": exc.code, "detail": exc.message, **exc.details},
            headers=headers,
        )

    app.add_exception_handler(RequestValidationError, validation.validation_error)
    errors.install(app)  # 404, 405, 503 when the database is away, 500: the same JSON shape
    app.add_middleware(RefuseNul)
    openapi.install(
        app,
        reasons=settings.classification_reasons,
        categories=settings.incidents.categories,
        min_password=MIN_PASSWORD_LENGTH,
    )
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(calls_routes.router)
    app.include_router(calls_routes.callers_router)
    app.include_router(users_routes.router)
    app.include_router(live_routes.router)
    app.include_router(incident_routes.router)
    app.include_router(stats_routes.router)
    app.include_router(callback_routes.router)
    return app
