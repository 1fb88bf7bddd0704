"""Statistics as tables: the rows a CSV export writes (pure: schemas in, text out)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from callcenter.stats.schemas import Summary


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    return buffer.getvalue()


def models_csv(models: Sequence[BaseModel], model: type[BaseModel]) -> str:
    """One row per model, one column per field, in declaration order."""
    fields = list(model.model_fields)
    return to_csv(fields, ([getattr(m, f) for f in fields] for m in models))


AGENCY_COLUMNS = (
    "agency_code",
    "agency_name",
    "kind",
    "emergencies",
    "resolved",
    "not_followed_up",
    "acknowledged",
    "dispatched",
    "pending",
)


def agency_rows(summary: Summary) -> list[list[Any]]:
    """The regency's recap by agency, with a total row."""
    rows: list[list[Any]] = [
        [
            a.code,
            a.name,
            a.kind,
            a.total,
            a.resolved,
            a.not_followed_up,
            a.acknowledged,
            a.dispatched,
            a.pending,
        ]
        for a in summary.emergencies.by_agency
    ]
    totals = [sum(row[i] for row in rows) for i in range(3, len(AGENCY_COLUMNS))]
    rows.append(["total", "Total", "", *totals])
    return rows


def summary_rows(summary: Summary) -> list[list[Any]]:
    """The summary as (section, name, value) rows."""
    rows: list[list[Any]] = [
        ["calls", name, getattr(summary, name)]
        for name in (
            "total",
            "answered",
            "abandoned_in_ivr",
            "abandoned_in_queue",
            "unanswered",
            "failed",
            "in_progress",
        )
    ]
    rows += [["classification", k, v] for k, v in summary.by_classification.items()]
    rows += [["reason", k, v] for k, v in summary.by_reason.items()]
    rows.append(["classification", "prank_share", summary.prank_share])
    e = summary.emergencies
    rows += [
        ["emergencies", name, getattr(e, name)]
        for name in (
            "total",
            "with_incident",
            "without_agency",
            "resolved",
            "not_followed_up",
            "in_progress",
        )
    ]
    for agency in e.by_agency:
        rows += [
            [f"agency:{agency.code}", status, getattr(agency, status)]
            for status in (
                "total",
                "resolved",
                "not_followed_up",
                "acknowledged",
                "dispatched",
                "pending",
            )
        ]
    return rows
