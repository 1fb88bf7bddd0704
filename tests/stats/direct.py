"""Statistics computed the slow, obvious way from every call row: what the rollups must equal."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.localtime import day_key
from callcenter.models import Call


@dataclass(frozen=True)
class Row:
    day: date
    outcome: str
    classification: str | None
    reason: str | None
    operator: str | None
    wait: int | None
    talk: int | None
    caller: str | None
    answer: int | None = None
    overflows: int = 0


def calls(session: Session, first: date, last: date, tz: ZoneInfo) -> list[Row]:
    rows = []
    for call in session.scalars(select(Call)):
        day = call.started_at.astimezone(tz).date()
        if first <= day <= last:
            rows.append(
                Row(
                    day,
                    call.outcome.value,
                    call.classification.value if call.classification else None,
                    call.classification_reason,
                    call.operator,
                    call.wait_seconds,
                    call.talk_seconds,
                    call.caller_e164,
                    call.answer_seconds,
                    call.overflows,
                )
            )
    return rows


def nearest_rank(values: list[int], p: int) -> int | None:
    ordered = sorted(values)
    return ordered[math.ceil(p / 100 * len(ordered)) - 1] if ordered else None


def summary(rows: list[Row]) -> dict[str, Any]:
    outcomes = Counter(r.outcome for r in rows)
    classes = Counter(r.classification or "unclassified" for r in rows)
    return {
        "total": len(rows),
        "answered": outcomes["answered"],
        "abandoned_in_ivr": outcomes["abandoned_in_ivr"],
        "abandoned_in_queue": outcomes["abandoned_in_queue"],
        "unanswered": outcomes["unanswered"],
        "overflowed": sum(r.overflows > 0 for r in rows),
        "by_classification": {
            c: classes[c] for c in ("emergency", "prank", "non_emergency", "unclassified")
        },
        "by_reason": dict(sorted(Counter(r.reason for r in rows if r.reason).items())),
    }


def answer_times(rows: list[Row]) -> dict[str, Any]:
    answered = [r for r in rows if r.outcome == "answered"]
    waits = [r.wait for r in answered if r.wait is not None]
    # NENA's answer time: from reaching the PBX to the answer, the IVR included.
    answers = [r.answer for r in answered if r.answer is not None]
    return {
        "answered": len(answered),
        "overflowed": sum(r.overflows > 0 for r in rows),
        "wait_p50": nearest_rank(waits, 50),
        "wait_p90": nearest_rank(waits, 90),
        "wait_p95": nearest_rank(waits, 95),
        "wait_max": max(waits, default=None),
        "answer_p50": nearest_rank(answers, 50),
        "answer_p90": nearest_rank(answers, 90),
        "answer_p95": nearest_rank(answers, 95),
        "answer_max": max(answers, default=None),
        **{
            f"within_{t}s": round(sum(a <= t for a in answers) / len(answers), 4)
            if answers
            else None
            for t in (10, 15, 20)
        },
    }


def per_day(rows: list[Row]) -> dict[int, list[Row]]:
    days: dict[int, list[Row]] = defaultdict(list)
    for r in rows:
        days[day_key(r.day)].append(r)
    return days


def operators(rows: list[Row]) -> list[dict[str, Any]]:
    names = sorted({r.operator for r in rows if r.operator})
    result = []
    for name in names:
        mine = [r for r in rows if r.operator == name]
        talks = [r.talk for r in mine if r.talk is not None]
        result.append(
            {
                "operator": name,
                "answered": sum(r.outcome == "answered" for r in mine),
                "mean_talk_seconds": round(sum(talks) / len(talks), 1) if talks else None,
                "tagged": sum(r.classification is not None for r in mine),
            }
        )
    return result


def prank_callers(rows: list[Row], limit: int) -> list[tuple[str, int]]:
    counts = Counter(r.caller for r in rows if r.classification == "prank" and r.caller)
    ranked = sorted(((c, n) for c, n in counts.items() if n >= 2), key=lambda x: (-x[1], x[0]))
    return ranked[:limit]
