"""`callcenter export calls --format jsonl|csv`: calls with the fields of the export contract."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from callcenter.audit import service as audit
from callcenter.calls.export import export_rows, write_csv, write_jsonl
from callcenter.db import make_engine, make_sessionmaker, transaction
from callcenter.settings import get_settings


def _since(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("export", help="export data")
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="WHAT")
    calls = kinds.add_parser("calls", help="every call, one row each")
    calls.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    calls.add_argument("--since", type=_since, help="only calls started at or after (ISO 8601)")
    calls.add_argument("--pbx", help="only calls from this PBX")
    calls.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        # Who exported callers' data, recorded before a row leaves (docs/privacy.md).
        with transaction(make_sessionmaker(engine)) as session:
            audit.record(
                session,
                action="calls.export",
                entity="calls",
                actor_name=audit.command_actor(),
                details={
                    "format": args.format,
                    "since": args.since.isoformat() if args.since else None,
                    "pbx": args.pbx,
                },
            )
        with make_sessionmaker(engine)() as session:
            rows = export_rows(session, pbx=args.pbx, since=args.since)
            write = write_jsonl if args.format == "jsonl" else write_csv
            write(rows, sys.stdout)
    finally:
        engine.dispose()
    return 0
