"""`callcenter ami`: the AMI listener alone (one per PBX in a larger center)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from callcenter import metrics, sdnotify
from callcenter.ami.pbx_lock import PbxLock, PbxLockHeld
from callcenter.ami.runtime import AmiRuntime
from callcenter.db import make_engine, migrate
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
    lock = PbxLock(settings)
    try:
        lock.acquire()
    except PbxLockHeld as exc:
        log.error("%s", exc)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        runtime = AmiRuntime(settings)
        runtime.start()
        # This listener's figures on a port of its own ([metrics]); calls come from `serve`'s.
        exporter = metrics.start_metrics(settings.metrics)
        # Under systemd (Type=notify): ready when the listener's /readyz probe says so.
        notifier = sdnotify.notify_when_ready(sdnotify.probe_check(runtime.listener.readiness))
        stop.wait()
        notifier.stop()
        if exporter is not None:
            exporter.stop()
        runtime.stop()
    finally:
        lock.release()
    return 0
