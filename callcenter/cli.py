"""The `callcenter` console script. Each subcommand lives in callcenter/commands/."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

# Each module exposes register(subparsers) and sets `func` on its parser. Listed by the commands
# it registers: a command imports only its own module (`user list` need not load the web app,
# a second of start-up), `callcenter --help` imports them all.
COMMAND_MODULES = {
    "serve": "callcenter.commands.serve",
    "migrate": "callcenter.commands.migrate",
    "user": "callcenter.commands.user",
    "ami": "callcenter.commands.ami",
    "replay": "callcenter.commands.replay",
    "export": "callcenter.commands.export",
    "reconcile": "callcenter.commands.reconcile",
    "agi": "callcenter.commands.agi",
    "fastagi": "callcenter.commands.fastagi",
    "stats-refresh": "callcenter.commands.stats",
    "notify": "callcenter.commands.notify",
    "demo": "callcenter.commands.demo",
    "backup": "callcenter.commands.backup",
    "restore": "callcenter.commands.backup",
    "retention": "callcenter.commands.privacy",
    "caller": "callcenter.commands.privacy",
}


# Exit codes besides 0 and 1: the configuration is wrong (fix it), or a service is down (retry).
EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3


def _fail(message: str, code: int) -> int:
    print(f"callcenter: {message}", file=sys.stderr)  # noqa: T201
    return code


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; given a known ``command``, with only the module that registers it."""
    parser = argparse.ArgumentParser(
        prog="callcenter", description="Siaga 112: the 112 emergency call center backend."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = (
        [COMMAND_MODULES[command]]
        if command in COMMAND_MODULES
        else list(dict.fromkeys(COMMAND_MODULES.values()))
    )
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["agi"] and not {"-h", "--help"} & set(argv):
        # Process AGI: Asterisk waits on this start-up for every call; skip the other commands.
        from callcenter.commands import agi

        return agi.main(argv[1:])
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    from pydantic import ValidationError

    from callcenter import logs
    from callcenter.settings import ConfigError, describe, get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:
        return _fail(describe(exc), EXIT_CONFIG)
    except ConfigError as exc:
        return _fail(exc.message, EXIT_CONFIG)
    # SQLAlchemy and the models only once the configuration holds: a wrong one is told at once.
    from sqlalchemy.exc import OperationalError

    from callcenter.audit import changes, service

    logs.configure(settings.log_level, settings.log_format)
    # Changes made by commands are audited as the system account's that ran them.
    changes.default_actor_name = service.command_actor()
    # Alembic, imported by a command after logging is set up, announces its plugins at info.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if args.command != "migrate":
        # Readiness probes check the schema revision every few seconds: not worth a log line.
        logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except ConfigError as exc:
        return _fail(exc.message, EXIT_CONFIG)
    except OperationalError as exc:
        # The server is down, refuses us, or the name does not resolve: say so, no traceback.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return _fail(f"cannot use the database: {reason}", EXIT_UNAVAILABLE)
    except BrokenPipeError:
        # The reader went away (`callcenter export calls | head`): stop quietly, as Unix tools
        # do, and keep the interpreter's final flush from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
