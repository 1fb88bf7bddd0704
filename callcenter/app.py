"""The FastAPI application: engines are built in the lifespan, never at import."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from callcenter import console, logredact, metrics
from callcenter.api import auth, docs, errors, health, observe, openapi, validation
from callcenter.api.deps import commit_executor
from callcenter.api.nul import RefuseNul
from callcenter.api.writes import WRITE_CONNECTIONS, WriteThreads
from callcenter.audit import routes as audit_routes
from callcenter.callbacks import routes as callback_routes
from callcenter.calls import live_routes
from callcenter.calls import routes as calls_routes
from callcenter.db import make_engine, make_sessionmaker
from callcenter.db.migrate import is_at_head_or_unreachable
from callcenter.errors import CallCenterError, ServiceUnavailable
from callcenter.incidents import routes as incident_routes
from callcenter.notify import routes as notify_routes
from callcenter.phone import load_places
from callcenter.settings import Settings, get_settings
from callcenter.stats import routes as stats_routes
from callcenter.stats.admitted import RecentlyAdmitted
from callcenter.stats.refresher import RollupRefresher
from callcenter.stats.shared import SharedReads
from callcenter.users import routes as users_routes
from callcenter.users.login import LoginGuard
from callcenter.users.service import MIN_PASSWORD_LENGTH

log = logging.getLogger(__name__)
# Routers whose changes, or reads of personal data, go to the audit log (callcenter/audit).
AUDITED_CHANGES = [Depends(audit_routes.bind_actor)]
AUDITED_READS = [Depends(audit_routes.record_personal_read)]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logredact.install()  # the live stream's ?access_token= must not reach the access log

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
        load_places()  # before the first screen pop, not during it
        app.state.sessionmaker = make_sessionmaker(engine)
        # The write threads' own connections: a tag never waits for a pooled connection that
        # statistics readers (or anyone) hold.
        write_engine = make_engine(
            settings.resolved_database_url, pool_size=WRITE_CONNECTIONS, max_overflow=0
        )
        app.state.write_threads = WriteThreads(write_engine)
        app.state.metrics = metrics.start_metrics(settings.metrics, engine)
        app.state.commit_executor = commit_executor()
        app.state.login_guard = LoginGuard(
            max_failures_per_address=settings.login_max_failures_per_address
        )
        app.state.rollup_refresher = RollupRefresher(
            engine,
            timezone=settings.timezone,
            safety=timedelta(seconds=settings.stats.refresh_safety_seconds),
        )
        app.state.shared_reads = SharedReads(app.state.sessionmaker)
        app.state.admitted_readers = RecentlyAdmitted()
        # Startup objects leave the collector's scans: a full collection then takes ~1 ms
        # instead of ~60 ms, which otherwise hit large statistics responses at random.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            app.state.rollup_refresher.close()
            app.state.shared_reads.close()
            if app.state.metrics is not None:
                app.state.metrics.stop()
            app.state.write_threads.close()
            write_engine.dispose()
            app.state.commit_executor.shutdown(wait=True)
            app.state.login_guard.close()
            engine.dispose()

    app = FastAPI(
        title="Siaga 112",
        description="Backend of the 112 emergency call center: calls, tagging, incidents, stats.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by api/docs.py without a CDN
        redoc_url=None,
    )
    docs.install(app)

    @app.exception_handler(CallCenterError)
    async def domain_error(_request: Request, exc: CallCenterError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
        headers.update(exc.headers)
        return JSONResponse(
            status_code=exc.status_code,
            content={"error": exc.code, "detail": exc.message, **exc.details},
            headers=headers,
        )

    app.add_exception_handler(RequestValidationError, validation.validation_error)
    app.add_middleware(observe.RequestObserver)
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
    app.include_router(calls_routes.callers_router, dependencies=AUDITED_READS)
    app.include_router(users_routes.router, dependencies=AUDITED_CHANGES)
    app.include_router(live_routes.router)
    app.include_router(incident_routes.router, dependencies=AUDITED_CHANGES)
    app.include_router(stats_routes.router)  # /stats/callers is audited on its own route
    app.include_router(callback_routes.router)
    app.include_router(notify_routes.router)
    app.include_router(notify_routes.ack_router)
    console.install(app)  # the browser console under /console
    app.include_router(audit_routes.router)
    return app
