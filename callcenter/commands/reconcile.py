"""`callcenter reconcile --since ...`: complete calls the listener missed from queue_log/CDR."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callcenter.ami.reconcile import complete, read_logs
from callcenter.ami.store import Batch, CallStore
from callcenter.db import make_engine, make_sessionmaker
from callcenter.settings import get_settings


def _since(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "reconcile", help="complete calls from Asterisk's queue_log and CDR"
    )
    parser.add_argument("--since", type=_since, required=True, help="ISO 8601 (UTC if no zone)")
    parser.add_argument("--queue-log", type=Path, help="default: ami.queue_log_path")
    parser.add_argument("--cdr", type=Path, help="cdr_csv Master.csv; default: ami.cdr_path")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    ami = settings.ami
    queue_log = args.queue_log or (Path(ami.queue_log_path) if ami.queue_log_path else None)
    cdr = args.cdr or (Path(ami.cdr_path) if ami.cdr_path else None)
    if queue_log is None and cdr is None:
        print("no queue_log or CDR: set ami.queue_log_path / ami.cdr_path or pass them")  # noqa: T201
        return 2
    for path in (queue_log, cdr):
        if path is not None and not path.exists():
            print(f"{path}: no such file")  # noqa: T201
            return 2
    reconciled = reconcile(
        settings_pbx=ami.pbx_name,
        database_url=settings.resolved_database_url,
        region=settings.phone_region,
        queue_log=queue_log,
        cdr=cdr,
        since=args.since,
        context=ami.inbound_context,
        extensions=ami.inbound_extensions,
        cdr_timezone=ami.cdr_timezone,
    )
    print(f"{reconciled['completed']} calls completed, {reconciled['created']} created")  # noqa: T201
    return 0


def reconcile(
    *,
    settings_pbx: str,
    database_url: str,
    region: str,
    queue_log: Path | None,
    cdr: Path | None,
    since: datetime,
    context: str,
    extensions: list[str],
    cdr_timezone: str,
) -> dict[str, int]:
    from zoneinfo import ZoneInfo

    logged = read_logs(
        queue_log=queue_log,
        cdr=cdr,
        since=since,
        context=context,
        extensions=extensions,
        tz=ZoneInfo(cdr_timezone),
    )
    engine = make_engine(database_url)
    try:
        store = CallStore(make_sessionmaker(engine), pbx=settings_pbx, region=region)
        known = store.load_states(logged)
        batch = Batch()
        created = 0
        for uniqueid, facts in logged.items():
            before = known.get(uniqueid)
            snapshot = before.snapshot() if before else None
            state = complete(before, facts)
            if state is None or (snapshot is not None and state.snapshot() == snapshot):
                continue
            created += before is None
            batch.calls[uniqueid] = state
        store.write(batch)
    finally:
        engine.dispose()
    return {"completed": len(batch.calls) - created, "created": created}
