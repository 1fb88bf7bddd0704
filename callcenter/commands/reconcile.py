"""`callcenter reconcile --since ...`: complete calls the listener missed from queue_log, CDR
and CEL, and say exactly what changed."""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callcenter.ami.batch import Batch
from callcenter.ami.call_state import CallState
from callcenter.ami.reconcile import complete, read_logs
from callcenter.ami.store import CallStore
from callcenter.db import make_engine, make_sessionmaker
from callcenter.settings import get_settings

# Calls written per transaction. A batch's statements bind a few parameters per call, and
# PostgreSQL allows at most 65,535 in one statement: a reconcile after a long outage (66,404
# calls in the one-hour soak) failed whole. Each write is safe to repeat: a run that stops
# half-way is completed by running it again.
CALLS_PER_WRITE = 1000


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
    parser.add_argument(
        "--cel",
        type=Path,
        help="cel_custom JSON lines (hangup cause, operator channel, exact times); "
        "default: ami.cel_path",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    ami = settings.ami
    queue_log = args.queue_log or (Path(ami.queue_log_path) if ami.queue_log_path else None)
    cdr = args.cdr or (Path(ami.cdr_path) if ami.cdr_path else None)
    cel = args.cel or (Path(ami.cel_path) if ami.cel_path else None)
    if queue_log is None and cdr is None and cel is None:
        print("no queue_log, CDR or CEL: set ami.queue_log_path / cdr_path / cel_path")  # noqa: T201
        return 2
    for path in (queue_log, cdr, cel):
        if path is not None and not path.exists():
            print(f"{path}: no such file")  # noqa: T201
            return 2
    reconciled = reconcile(
        settings_pbx=ami.pbx_name,
        database_url=settings.resolved_database_url,
        region=settings.phone_region,
        queue_log=queue_log,
        cdr=cdr,
        cel=cel,
        since=args.since,
        context=ami.inbound_context,
        extensions=ami.inbound_extensions,
        cdr_timezone=ami.cdr_timezone,
    )
    print(reconciled.summary())  # noqa: T201
    return 0


# What a stored call shows: a change to any of these is a change someone can see.
VISIBLE = (
    "outcome",
    "started_at",
    "queued_at",
    "answered_at",
    "ended_at",
    "queue",
    "operator",
    "operator_interface",
    "wait_seconds",
    "answer_seconds",
    "talk_seconds",
    "ended_by",
    "hangup_cause",
)


def _visible(state: CallState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in VISIBLE}


def _calls(n: int) -> str:
    return f"{n} call" if n == 1 else f"{n} calls"


@dataclass
class Report:
    """What a reconciliation changed: calls created, calls it ended (completed), calls it
    only filled in (updated), and how often each field changed."""

    created: int = 0
    completed: int = 0
    updated: int = 0
    fields: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        """One line, e.g. ``1 call created, 0 calls completed, 1 call updated (outcome: 1)``."""
        changed = ", ".join(f"{name}: {n}" for name, n in sorted(self.fields.items()))
        return (
            f"{_calls(self.created)} created, {_calls(self.completed)} completed, "
            f"{_calls(self.updated)} updated" + (f" ({changed})" if changed else "")
        )


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
    cel: Path | None = None,
) -> Report:
    from zoneinfo import ZoneInfo

    logged = read_logs(
        queue_log=queue_log,
        cdr=cdr,
        cel=cel,
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
        report = Report()
        for uniqueid, facts in logged.items():
            before = known.get(uniqueid)
            snapshot = before.snapshot() if before else None
            shown = _visible(before) if before else None
            was_final = before.is_final if before else False
            state = complete(before, facts)
            if state is None or (snapshot is not None and state.snapshot() == snapshot):
                continue
            batch.calls[uniqueid] = state
            if len(batch.calls) == CALLS_PER_WRITE:
                store.write(batch)
                batch = Batch()
            if shown is None:
                report.created += 1
                continue
            changed = [name for name, value in _visible(state).items() if shown[name] != value]
            report.fields.update(changed)
            if state.is_final and not was_final:
                report.completed += 1
            elif changed:
                report.updated += 1
        store.write(batch)
    finally:
        engine.dispose()
    return report
