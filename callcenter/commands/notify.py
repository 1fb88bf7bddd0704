"""`callcenter notify`: the notification worker alone (`serve` runs it too)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from callcenter.db import make_engine, make_sessionmaker
from callcenter.db.migrate import is_at_head
from callcenter.notify.worker import Worker
from callcenter.settings import get_settings

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "notify",
        help="send agency notifications from the outbox, read SMS replies, escalate silence",
    )
    parser.add_argument(
        "--once", action="store_true", help="one round (what is due now), then exit"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    if not is_at_head(engine):
        raise SystemExit(
            "the database schema is not at the latest migration: run `callcenter migrate`"
        )
    worker = Worker(make_sessionmaker(engine), settings)
    try:
        if args.once:
            log.info("notify: %d notification(s) attempted", worker.run_once())
            return 0
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        log.info("notification worker running")
        worker.run_forever(stop)
        return 0
    finally:
        engine.dispose()
