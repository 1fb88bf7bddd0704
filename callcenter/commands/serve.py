"""`callcenter serve`: the whole backend in one process (API; AMI listener and FastAGI join it)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

import uvicorn

from callcenter import migrate
from callcenter.ami.runtime import AmiRuntime
from callcenter.api.app import create_app
from callcenter.db import make_engine
from callcenter.ivr.server import start_subprocess, stop_subprocess
from callcenter.notify.runtime import NotifyRuntime
from callcenter.settings import get_settings

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="run the backend: REST API (+ AMI listener and FastAGI server when enabled)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API worker processes (default 1); more than one serves the API only: run the "
        "listener as `callcenter ami` and the IVR as `callcenter fastagi`",
    )
    parser.add_argument(
        "--no-migrate",
        action="store_true",
        help="refuse to start on a schema that is not at head instead of migrating it",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.workers < 1:
        raise SystemExit("--workers must be at least 1")
    if args.workers > 1 and (settings.ami.enabled or settings.fastagi.enabled):
        # Each worker would run its own listener; and with SQLite the live stream reaches
        # only the process the listener runs in.
        raise SystemExit(
            "--workers > 1 serves the API only: set CALLCENTER_AMI__ENABLED=false and "
            "CALLCENTER_FASTAGI__ENABLED=false, and run `callcenter ami` and "
            "`callcenter fastagi` beside it"
        )
    if not args.no_migrate:
        # Like a prestart step: the embedded default just works; replicas can pass --no-migrate.
        engine = make_engine(settings.resolved_database_url)
        migrate.upgrade(engine)
        engine.dispose()
    if args.workers > 1:
        # Each worker process builds its own app (and engine) from the same settings.
        uvicorn.run(
            "callcenter.api.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="info",
        )
        return 0
    app = create_app(settings)
    # The FastAGI server runs in its own process (pyst2's AGI needs a main thread per call).
    fastagi = start_subprocess(settings) if settings.fastagi.enabled else None
    runtime = None
    if settings.ami.enabled:
        # The listener runs beside the API in its own threads; the API keeps serving when
        # Asterisk is unreachable, and /readyz says why (probe "ami").
        runtime = AmiRuntime(settings)
        runtime.attach(app)
        runtime.start()
    # Agency notifications (issue 15): the outbox worker, in a thread beside the API.
    notifier = NotifyRuntime(settings) if settings.notify.enabled else None
    if notifier is not None:
        notifier.start()
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    finally:
        if notifier is not None:
            notifier.stop()
        if runtime is not None:
            runtime.stop()
        if fastagi is not None:
            stop_subprocess(fastagi)
    return 0
