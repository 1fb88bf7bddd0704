"""`callcenter fastagi`: the IVR as a FastAGI server, `AGI(agi://HOST:4573/ivr)` in the dialplan."""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType
from typing import Any

from callcenter.settings import get_settings

log = logging.getLogger("callcenter.ivr.server")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "fastagi", help="run the 112 IVR as a FastAGI server (one thread per call)"
    )
    parser.add_argument("--host", help="default: [fastagi] host")
    parser.add_argument("--port", type=int, help="default: [fastagi] port; 0: any free port")
    parser.add_argument("--max-sessions", type=int, help="default: [fastagi] max_sessions")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from callcenter.ivr.server import FastAgiBindError, FastAgiServer

    server = FastAgiServer(
        get_settings(), host=args.host, port=args.port, max_sessions=args.max_sessions
    )
    try:
        host, port = server.bind()
    except FastAgiBindError as exc:
        log.error("%s", exc)
        return 1

    def stop(_signum: int, _frame: FrameType | None) -> None:
        server.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "FastAGI server listening on %s:%d (at most %d sessions)", host, port, server.max_sessions
    )
    server.serve_forever()
    server.stop()
    return 0
