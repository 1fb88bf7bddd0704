"""Calls as export rows (the fields of issue 3 item 7, the call's id and PBX, privacy, answer
time and overflows), as JSON lines or CSV.

Times are ISO 8601 in UTC; ``outcome`` and ``classification`` are their exported names.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import Call

EXPORT_FIELDS = (
    "id",
    "pbx",
    "uniqueid",
    "linkedid",
    "caller_id_raw",
    "caller_id_name",
    "caller_e164",
    "caller_id_private",
    "started_at",
    "queued_at",
    "answered_at",
    "ended_at",
    "outcome",
    "queue",
    "operator",
    "operator_interface",
    "wait_seconds",
    "answer_seconds",
    "talk_seconds",
    "overflows",
    "ended_by",
    "hangup_cause",
    "classification",
    "gap",
)


def export_row(call: Call) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in EXPORT_FIELDS:
        value = getattr(call, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif hasattr(value, "value"):
            value = value.value
        row[name] = value
    return row


def export_rows(
    session: Session, *, pbx: str | None = None, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Calls in start order (then id), streamed in chunks."""
    stmt = select(Call).order_by(Call.started_at, Call.id).execution_options(yield_per=500)
    if pbx is not None:
        stmt = stmt.where(Call.pbx == pbx)
    if since is not None:
        stmt = stmt.where(Call.started_at >= since)
    for call in session.scalars(stmt):
        yield export_row(call)


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
        count += 1
    return count
