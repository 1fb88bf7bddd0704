"""`callcenter serve`: the whole backend in one process (API; AMI listener and FastAGI join it).

Every part runs in this one process (the FastAGI server and the listener as threads), so
nothing it starts can outlive it, whenever and however it is stopped. Shutdown (SIGTERM or
Ctrl-C) is bounded: live streams are cut after SHUTDOWN_STREAMS seconds, callers still in the
IVR get the FastAGI server's grace, and the listener stores its last batch.
"""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from callcenter.settings import get_settings

# The app and the parts beside it are imported where they start (~1.3 CPU s): `--workers N`
# only supervises (each worker imports the app itself), and a refused start loads none of it.
if TYPE_CHECKING:
    from callcenter import sdnotify
    from callcenter.ami.pbx_lock import PbxLock
    from callcenter.ami.runtime import AmiRuntime
    from callcenter.ivr.server import FastAgiServer
    from callcenter.notify.runtime import NotifyRuntime

log = logging.getLogger(__name__)

# uvicorn waits this long for open responses (the live streams never end) before it cuts them.
SHUTDOWN_STREAMS = 2


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="run the backend: REST API (+ AMI listener and FastAGI server when enabled)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address the API listens on (default %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8000,
        help="port the API listens on (default %(default)s; 0: any free port)",
    )
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


class Stopped(BaseException):
    """SIGTERM or SIGINT during start-up: leave whatever is starting, then stop every part.

    A BaseException, like KeyboardInterrupt, so no `except Exception` on the way swallows it.
    """


# Once uvicorn exists, a signal asks it to stop instead: raised inside its event loop, an
# exception could be swallowed by a callback's or the lifespan's error handling.
_uvicorn: uvicorn.Server | None = None


def _stop(signum: int, frame: FrameType | None) -> None:
    if _uvicorn is not None:
        _uvicorn.handle_exit(signum, frame)  # it returns from run() once stopped
        return
    raise Stopped(signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    # From the first moment: a stop during start-up unwinds through the same clean-up. While
    # uvicorn serves it takes these signals over; afterwards it re-raises the one it got here.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        return _run(args)
    except Stopped as stopped:
        log.info("stopped by %s", stopped)
        return 0


def _run(args: argparse.Namespace) -> int:
    global _uvicorn
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
        from callcenter.db import make_engine, migrate

        # Like a prestart step: the embedded default just works; replicas can pass --no-migrate.
        engine = make_engine(settings.resolved_database_url)
        if migrate.is_at_head_or_unreachable(engine) is None:
            # A PBX does not wait for our database: the listener spools, the API answers 503
            # and /readyz says why, until it is back (then `callcenter migrate` if needed).
            log.warning("the database is unreachable: starting without migrating")
        else:
            migrate.upgrade_and_seed(engine, settings)  # as `callcenter migrate`: agencies too
        engine.dispose()
    if args.workers > 1:
        # Each worker process builds its own app (and engine) from the same settings.
        uvicorn.run(
            "callcenter.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="info",
            timeout_graceful_shutdown=SHUTDOWN_STREAMS,
        )
        return 0
    from callcenter import metrics, sdnotify
    from callcenter.ami.pbx_lock import PbxLock, PbxLockHeld
    from callcenter.ami.runtime import AmiRuntime
    from callcenter.api.health import add_readiness_probe
    from callcenter.app import create_app
    from callcenter.ivr.server import FastAgiBindError, FastAgiServer
    from callcenter.notify.runtime import NotifyRuntime

    app = create_app(settings)
    fastagi: FastAgiServer | None = None
    runtime: AmiRuntime | None = None
    lock: PbxLock | None = None
    notifier: NotifyRuntime | None = None
    ready_notifier: sdnotify.ReadinessNotifier | None = None
    try:
        if settings.fastagi.enabled:
            # Bound before the API answers, so /readyz never says ready before it listens.
            fastagi = FastAgiServer(settings)
            host, port = fastagi.bind()
            fastagi.start()
            add_readiness_probe(app, "fastagi", fastagi.readiness)
            metrics.watch_fastagi(fastagi)
            log.info(
                "FastAGI server listening on %s:%d (at most %d sessions)",
                host,
                port,
                fastagi.max_sessions,
            )
        if settings.ami.enabled:
            lock = PbxLock(settings)
            lock.acquire()
            # The listener runs beside the API in its own threads; the API keeps serving when
            # Asterisk is unreachable, and /readyz says why (probe "ami").
            runtime = AmiRuntime(settings)
            runtime.attach(app)
            runtime.start()
        if settings.notify.enabled:
            # Agency notifications (issue 15): the outbox worker, in a thread beside the API.
            notifier = NotifyRuntime(settings)
            notifier.start()
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level="info",
            timeout_graceful_shutdown=SHUTDOWN_STREAMS,
            # Our JSON handler stays on uvicorn's loggers; the access line is our own.
            log_config=None,
            access_log=False,
        )
        # Under systemd (Type=notify): READY=1 once /readyz says every part is ready.
        ready_notifier = sdnotify.notify_when_ready(
            sdnotify.readyz_check(f"http://{_local(args.host)}:{args.port}/readyz")
        )
        _uvicorn = uvicorn.Server(config)
        _uvicorn.run()
    except (FastAgiBindError, PbxLockHeld) as exc:
        log.error("%s", exc)
        return 1
    finally:
        # A second signal must not cut the clean-up short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if ready_notifier is not None:
            ready_notifier.stop()
        if fastagi is not None:
            fastagi.stop()
        if notifier is not None:
            notifier.stop()
        if runtime is not None:
            runtime.stop()
        if lock is not None:
            lock.release()
    return 0


def _local(host: str) -> str:
    """Where this process reaches its own API (a wildcard address is not a destination)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
