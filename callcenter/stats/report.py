"""The monthly recap: figures gathered from the statistics, and a printable HTML page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

from pydantic import BaseModel
from sqlalchemy.orm import Session

from callcenter.notify.stats import RESPONSE_COLUMNS, AgencyResponse, agency_response, recap_rows
from callcenter.settings import Settings
from callcenter.stats import queries, tables
from callcenter.stats.schemas import AnswerTimes, RegionFigures, Summary


class MonthlyReport(BaseModel):
    month: str
    summary: Summary
    answer_times: AnswerTimes
    regions: list[RegionFigures]
    # How each agency answered (time to acknowledge and resolve, within target, escalations).
    agency_response: list[AgencyResponse]


def monthly(session: Session, first: date, last: date, settings: Settings) -> MonthlyReport:
    return MonthlyReport(
        month=f"{first:%Y-%m}",
        summary=queries.summary(session, first, last, settings),
        answer_times=queries.answer_times(session, first, last, settings).overall,
        regions=[
            r for r in queries.regions(session, first, last, settings).regions if r.emergencies
        ],
        agency_response=agency_response(session, first, last, settings),
    )


def _table(header: list[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape('' if v is None else str(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _label(name: str) -> str:
    """A column or code as people read it: ``not_followed_up`` -> "Not followed up"."""
    return name.replace("_", " ").capitalize()


def _count(n: int, one: str, many: str) -> str:
    """A count with its noun.

    >>> _count(1, "emergency", "emergencies"), _count(2, "emergency", "emergencies")
    ('1 emergency', '2 emergencies')
    """
    return f"{n} {one if n == 1 else many}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #111; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #999; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
@media print { body { margin: 0; } h2 { page-break-after: avoid; } }
"""


def render_html(report: MonthlyReport) -> str:
    s = report.summary
    a = report.answer_times
    calls = [
        ["Total calls", s.total],
        ["Answered", s.answered],
        ["Abandoned in IVR", s.abandoned_in_ivr],
        ["Abandoned in queue", s.abandoned_in_queue],
        ["Unanswered", s.unanswered],
        ["Overflowed (a queue round timed out)", s.overflowed],
    ]
    classes = [[_label(name), n] for name, n in s.by_classification.items()]
    classes.append(["Prank share", _percent(s.prank_share)])
    reasons = [[_label(name), n] for name, n in s.by_reason.items()]
    e = s.emergencies
    agencies = recap_rows(tables.agency_rows(s), report.agency_response)
    agency_headers = [*(_label(c) for c in tables.AGENCY_COLUMNS[1:]), *RESPONSE_COLUMNS]
    answer = [
        [
            "Answer time p50 / p90 / p95 / max (s, from reaching the PBX)",
            f"{a.answer_p50} / {a.answer_p90} / {a.answer_p95} / {a.answer_max}",
        ],
        [
            "Wait in queue p50 / p90 / p95 / max (s)",
            f"{a.wait_p50} / {a.wait_p90} / {a.wait_p95} / {a.wait_max}",
        ],
        ["Answered within 10 s", _percent(a.within_10s)],
        ["Answered within 15 s (NENA: 90%)", _percent(a.within_15s)],
        ["Answered within 20 s (NENA: 95%)", _percent(a.within_20s)],
        ["Abandon rate", _percent(a.abandon_rate)],
    ]
    regions = [[r.district, r.emergencies] for r in report.regions]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>112 recap {escape(report.month)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Siaga 112 — monthly recap {escape(report.month)}</h1>"
        f"<p>Period {s.period.from_} to {s.period.to} ({escape(s.period.timezone)}).</p>"
        f"<h2>Calls</h2>{_table(['', 'Calls'], calls)}"
        f"<h2>Classification</h2>{_table(['', 'Calls'], classes)}"
        f"<h2>Reasons</h2>{_table(['Reason', 'Calls'], reasons)}"
        f"<h2>Emergencies by agency</h2><p>{_count(e.total, 'emergency', 'emergencies')}: "
        f"{e.resolved} followed up and resolved, {e.not_followed_up} not followed up, "
        f"{e.in_progress} in progress.</p>"
        f"{_table(agency_headers, [r[1:] for r in agencies])}"
        f"<h2>Answer times</h2>{_table(['', ''], answer)}"
        f"<h2>Emergencies by district</h2>{_table(['District', 'Emergencies'], regions)}"
        "</body></html>"
    )
