"""`callcenter fastagi`: the IVR as a FastAGI server, `AGI(agi://HOST:4573/ivr)` in the dialplan."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from callcenter.settings import get_settings

log = logging.getLogger("callcenter.ivr.server")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "fastagi", help="run the 112 IVR as a FastAGI server (one process per call)"
    )
    parser.add_argument("--host", help="default: [fastagi] host")
    parser.add_argument("--port", type=int, help="default: [fastagi] port; 0: any free port")
    parser.add_argument("--max-sessions", type=int, help="default: [fastagi] max_sessions")
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the parent process ends (how `callcenter serve` runs it)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from callcenter.ivr.server import FastAgiServer

    settings = get_settings()
    server = FastAgiServer(
        settings,
        settings.fastagi.host if args.host is None else args.host,
        settings.fastagi.port if args.port is None else args.port,
        settings.fastagi.max_sessions if args.max_sessions is None else args.max_sessions,
        parent_pid=os.getppid() if args.exit_with_parent else None,
    )
    host, port = server.bind()
    log.info(
        "FastAGI server listening on %s:%d (at most %d sessions)", host, port, server.max_sessions
    )
    server.serve_forever()
    log.info("FastAGI server stopped")
    return 0
