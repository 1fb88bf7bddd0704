"""The supervisor's dashboard: figures from the statistics services, over any date range."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from callcenter.api.deps import RefresherDep, SessionDep, SettingsDep
from callcenter.console import charts, formats, web
from callcenter.console.web import SupervisorPage
from callcenter.db import utcnow
from callcenter.errors import InvalidInput
from callcenter.incidents import service as incidents
from callcenter.models import Classification
from callcenter.settings import Settings
from callcenter.stats import queries, report, tables
from callcenter.stats.routes import csv_response, date_range, month_range

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)
CLASSES = [*(c.value for c in Classification), "unclassified"]


async def _caught_up(refresher: RefresherDep) -> None:
    """The rollups include every commit made before the request: the app's refresher does the
    work once for all readers, so a page never takes SQLite's write lock itself."""
    await refresher.fresh()


# A parameter of the supervisor's pages, after the page's log-in check.
CaughtUp = Annotated[None, Depends(_caught_up)]


def _span(first: str, last: str, today: date) -> tuple[date, date]:
    try:
        start = date.fromisoformat(first) if first else today - timedelta(days=6)
        end = date.fromisoformat(last) if last else today
    except ValueError as exc:
        raise InvalidInput("dates are YYYY-MM-DD", field="from") from exc
    return date_range(start, end)


def figures(session: Session, settings: Settings, first: date, last: date) -> dict[str, Any]:
    today = utcnow().astimezone(settings.tz).date()
    now_summary = queries.summary(session, today, today, settings)
    summary = queries.summary(session, first, last, settings)
    answer = queries.answer_times(session, first, last, settings)
    per_hour = queries.calls_per_hour_of_day(session, first, last)
    daily = queries.timeseries(session, first, last, "day", settings)
    mix = charts.stacked(
        [(p.bucket[5:10], [(k, getattr(p, k)) for k in CLASSES]) for p in daily.points]
    )
    return {
        "today": today,
        "now": now_summary,
        "overdue": incidents.overdue(
            session, now=utcnow(), minutes=settings.incidents.followup_overdue_minutes
        ),
        "summary": summary,
        "answer": answer,
        "per_hour": charts.bars([(f"{h:02d}", n) for h, n in enumerate(per_hour)]),
        "per_hour_values": per_hour,
        "daily": daily.points,
        "mix": mix,
        "classes": CLASSES,
        "operators": queries.operators(session, first, last, settings).operators,
        "regions": queries.regions(session, first, last, settings).regions,
    }


@router.get("/supervisor", response_class=HTMLResponse)
def dashboard(
    request: Request,
    console: SupervisorPage,
    caught_up: CaughtUp,
    session: SessionDep,
    settings: SettingsDep,
    from_: str = "",
    to: str = "",
) -> HTMLResponse:
    today = utcnow().astimezone(settings.tz).date()
    params = request.query_params
    try:
        first, last = _span(params.get("from", from_), params.get("to", to), today)
    except InvalidInput as exc:
        first, last = _span("", "", today)
        error = exc.message
    else:
        error = ""
    found = figures(session, settings, first, last)
    lang = web.lang_of(request)
    # The per-day tables as text here: a year is 365 rows of each (see web.table_rows).
    answer_rows = web.table_rows(
        [
            formats.day(d.date, lang),
            formats.number(d.total, lang),
            formats.number(d.answered, lang),
            formats.percent(d.within_15s, lang),
            formats.percent(d.within_20s, lang),
            formats.NONE if d.wait_p90 is None else str(d.wait_p90),
        ]
        for d in found["answer"].days
        if d.date is not None
    )
    mix_rows = web.table_rows(
        [p.bucket, *(str(getattr(p, k)) for k in CLASSES)] for p in found["daily"]
    )
    return web.render(
        request,
        "supervisor.html",
        console,
        first=first,
        last=last,
        month=f"{last:%Y-%m}",
        error=error,
        bars_svg=charts.bars_svg,
        stacked_svg=charts.stacked_svg,
        answer_rows=answer_rows,
        mix_rows=mix_rows,
        **found,
    )


@router.get("/supervisor/recap")
def recap(
    request: Request,
    console: SupervisorPage,
    caught_up: CaughtUp,
    session: SessionDep,
    settings: SettingsDep,
    month: str = "",
    format: str = "html",
) -> Response:
    """The monthly recap as the statistics API makes it: printable page or CSV."""
    del console
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise InvalidInput("month is YYYY-MM", field="month")
    span = month_range(month)
    result = report.monthly(session, *span, settings)
    if format == "csv":
        body = tables.to_csv(tables.AGENCY_COLUMNS, tables.agency_rows(result.summary))
        return csv_response(body, f"recap-{month}")
    del request
    return HTMLResponse(report.render_html(result))
