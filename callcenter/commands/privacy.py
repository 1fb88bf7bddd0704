"""`callcenter retention` and `callcenter caller export|erase NUMBER` (docs/privacy.md)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from callcenter.audit.service import command_actor
from callcenter.db import make_engine, make_sessionmaker, transaction, utcnow
from callcenter.errors import CallCenterError
from callcenter.privacy import retention, subject
from callcenter.settings import get_settings


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "retention", help="delete or pseudonymise personal data past its period ([retention])"
    )
    parser.set_defaults(func=run_retention)

    parser = subparsers.add_parser("caller", help="a caller's data: export it, or erase it")
    actions = parser.add_subparsers(dest="caller_action", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="everything kept about NUMBER, as JSON")
    export.add_argument("number")
    export.set_defaults(func=run_export)
    erase = actions.add_parser(
        "erase", help="pseudonymise NUMBER everywhere (refused while its incident is open)"
    )
    erase.add_argument("number")
    erase.set_defaults(func=run_erase)


def run_retention(_args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        report = retention.apply_retention(
            make_sessionmaker(engine), settings, now=utcnow(), actor_name=command_actor()
        )
    finally:
        engine.dispose()
    for name, value in asdict(report).items():
        print(f"{name.replace('_', ' ')}: {value}")  # noqa: T201
    return 0


def run_export(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            data = subject.export(session, args.number, settings, actor_name=command_actor())
    except CallCenterError as exc:
        print(exc.message, file=sys.stderr)  # noqa: T201
        return 1
    finally:
        engine.dispose()
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


def run_erase(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    factory = make_sessionmaker(engine)
    actor = command_actor()
    try:
        # A refusal is recorded, and committed, before anything is changed.
        with transaction(factory) as session:
            found = subject.find(session, args.number, settings)
            if not subject.known(session, found):
                print(f"nothing is kept about {args.number!r}", file=sys.stderr)  # noqa: T201
                return 1
            still_open = subject.check_open(session, found, actor_name=actor)
        if still_open:
            print(  # noqa: T201
                f"refused: incident(s) {', '.join(map(str, still_open))} of this caller are "
                "still open; erase once every agency has closed them (the refusal is recorded)",
                file=sys.stderr,
            )
            return 2
        with transaction(factory) as session:
            done = subject.erase(session, found, settings, actor_name=actor)
    except CallCenterError as exc:
        print(f"refused: {exc.message}", file=sys.stderr)  # noqa: T201
        return 2
    finally:
        engine.dispose()
    print(  # noqa: T201
        f"erased: now {done.pseudonym}; {done.calls} calls, {done.ivr_runs} IVR runs, "
        f"{done.callers} caller rows, {done.prank_rollup_rows} ranking rows pseudonymised, "
        f"{done.raw_events_deleted} raw events deleted"
    )
    return 0
