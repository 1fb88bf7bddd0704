"""`callcenter ami`: the AMI listener alone (one per PBX in a larger center)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from callcenter import migrate
from callcenter.ami.runtime import AmiRuntime
from callcenter.db import make_engine
from callcenter.settings import get_settings

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "ami", help="run the AMI listener alone (writes calls; API replicas read them)"
    )
    parser.set_defaults(func=run)


def run(_args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    at_head = migrate.is_at_head_or_unreachable(engine)
    engine.dispose()
    if at_head is False:
        print("the database schema is not at head: run `callcenter migrate` first")  # noqa: T201
        return 2
    if at_head is None:
        # A PBX does not wait for our database: listen, spool, store when it is back.
        log.warning("the database is unreachable: listening anyway, events spool on disk")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    runtime = AmiRuntime(settings)
    runtime.start()
    stop.wait()
    runtime.stop()
    return 0
