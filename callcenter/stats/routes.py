"""Statistics and monthly reports over REST, for supervisors and admins.

Every request first waits until the rollups include every commit made before it (the refresher
thread does the work, once for all readers waiting: a reader takes no write lock), then reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from callcenter.api.auth import SupervisorUser
from callcenter.api.deps import RefresherDep, SessionDep, SettingsDep, release_connection
from callcenter.errors import InvalidInput
from callcenter.ivr.stats import IvrDay, IvrFigures, ivr_days
from callcenter.models import Role, User
from callcenter.notify.stats import RESPONSE_COLUMNS, recap_rows
from callcenter.stats import queries, report, tables
from callcenter.stats.schemas import (
    AnswerTimes,
    AnswerTimesReport,
    CallerFigures,
    Callers,
    OperatorFigures,
    Operators,
    RegionFigures,
    Regions,
    Summary,
    TimePoint,
    TimeSeries,
)

router = APIRouter(prefix="/api/v1", tags=["statistics"])
Format = Literal["json", "csv"]
MAX_DAYS = 3700
MAX_HOURLY_DAYS = 400


# Statistics queries running at once in one process. More would only take turns on the GIL
# with the write threads (operators' tags) and the refresher, and hold pooled connections.
CONCURRENT_QUERIES = 4


async def fresh_rollups(
    user: SupervisorUser, session: SessionDep, refresher: RefresherDep, request: Request
) -> AsyncIterator[User]:
    """The statistics user, after the rollups caught up with the calls table; the route runs
    while this holds one of CONCURRENT_QUERIES slots.

    The connection that read the user goes back to the pool first: eighty readers waiting for
    a refresh must not hold the connections the refresh (and everyone else) needs.
    """
    await release_connection(request, session)
    await refresher.fresh()
    slots: asyncio.Semaphore | None = getattr(request.app.state, "stats_slots", None)
    if slots is None:
        slots = request.app.state.stats_slots = asyncio.Semaphore(CONCURRENT_QUERIES)
    async with slots:
        yield user


StatsUser = Annotated[User, Depends(fresh_rollups, scope="function")]


# The rollups key an hour as the integer YYYYMMDDHH (an INTEGER column): 2147 is the last year.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2147, 12, 31)
MONTH_PATTERN = r"^(19\d\d|20\d\d|21[0-3]\d|214[0-7])-(0[1-9]|1[0-2])$"


def date_range(
    from_: Annotated[
        date, Query(alias="from", description="first local day, YYYY-MM-DD (from 1900-01-01)")
    ],
    to: Annotated[
        date, Query(description="last local day (inclusive), YYYY-MM-DD (to 2147-12-31)")
    ],
) -> tuple[date, date]:
    if from_ < FIRST_DAY or to > LAST_DAY:
        # A day next to date's own limits has no UTC bounds (nor a following day).
        raise InvalidInput(f"days go from {FIRST_DAY} to {LAST_DAY}", field="from")
    if from_ > to:
        raise InvalidInput("`from` is after `to`", field="from")
    if (to - from_).days >= MAX_DAYS:
        raise InvalidInput(f"a range is at most {MAX_DAYS} days", field="to")
    return from_, to


Range = Annotated[tuple[date, date], Depends(date_range)]


def json_response(model: BaseModel) -> Response:
    # Serialised by pydantic-core directly: jsonable_encoder takes ~50 ms on an hourly series.
    return Response(content=model.model_dump_json(by_alias=True), media_type="application/json")


def csv_response(body: str, name: str) -> Response:
    return Response(
        content=body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/stats/summary", response_class=Response, responses={200: {"model": Summary}})
def summary(
    span: Range,
    session: SessionDep,
    settings: SettingsDep,
    _user: StatsUser,
    format: Format = "json",
) -> Response:
    result = queries.summary(session, *span, settings)
    if format == "csv":
        return csv_response(
            tables.to_csv(["section", "name", "value"], tables.summary_rows(result)), "summary"
        )
    return json_response(result)


@router.get(
    "/stats/answer-times", response_class=Response, responses={200: {"model": AnswerTimesReport}}
)
def answer_times(
    span: Range,
    session: SessionDep,
    settings: SettingsDep,
    _user: StatsUser,
    format: Format = "json",
) -> Response:
    result = queries.answer_times(session, *span, settings)
    if format == "csv":
        return csv_response(tables.models_csv(result.days, AnswerTimes), "answer-times")
    return json_response(result)


@router.get("/stats/timeseries", response_class=Response, responses={200: {"model": TimeSeries}})
def timeseries(
    span: Range,
    session: SessionDep,
    settings: SettingsDep,
    _user: StatsUser,
    interval: Literal["hour", "day", "month"] = "day",
    format: Format = "json",
) -> Response:
    if interval == "hour" and (span[1] - span[0]).days >= MAX_HOURLY_DAYS:
        raise InvalidInput(f"hourly series cover at most {MAX_HOURLY_DAYS} days", field="to")
    result = queries.timeseries(session, *span, interval, settings)
    if format == "csv":
        return csv_response(tables.models_csv(result.points, TimePoint), "timeseries")
    return json_response(result)


@router.get("/stats/ivr", response_class=Response, responses={200: {"model": IvrFigures}})
def ivr(
    span: Range,
    session: SessionDep,
    settings: SettingsDep,
    _user: SupervisorUser,
    format: Format = "json",
) -> Response:
    """Per local day: IVR sessions, skipped (no FastAGI slot), look-up misses, flagged callers."""
    result = ivr_days(session, *span, settings.tz)
    if format == "csv":
        return csv_response(tables.models_csv(result.days, IvrDay), "ivr")
    return json_response(result)


@router.get("/stats/operators", response_class=Response, responses={200: {"model": Operators}})
def operators(
    span: Range,
    session: SessionDep,
    settings: SettingsDep,
    _user: StatsUser,
    format: Format = "json",
) -> Response:
    result = queries.operators(session, *span, settings)
    if format == "csv":
        return csv_response(tables.models_csv(result.operators, OperatorFigures), "operators")
    return json_response(result)


@router.get("/stats/callers", response_class=Response, responses={200: {"model": Callers}})
def callers(
    span: Range,
    session: SessionDep,
    settings: SettingsDep,
    user: StatsUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    min_pranks: Annotated[int, Query(ge=1, le=1_000_000)] = 2,
    format: Format = "json",
) -> Response:
    result = queries.callers(
        session,
        *span,
        settings,
        limit=limit,
        min_pranks=min_pranks,
        masked=user.role is not Role.admin,
    )
    if format == "csv":
        return csv_response(tables.models_csv(result.callers, CallerFigures), "callers")
    return json_response(result)


@router.get("/stats/regions", response_class=Response, responses={200: {"model": Regions}})
def regions(
    span: Range,
    session: SessionDep,
    settings: SettingsDep,
    _user: StatsUser,
    format: Format = "json",
) -> Response:
    result = queries.regions(session, *span, settings)
    if format == "csv":
        return csv_response(tables.models_csv(result.regions, RegionFigures), "regions")
    return json_response(result)


def month_range(
    month: Annotated[
        str, Query(pattern=MONTH_PATTERN, description="YYYY-MM, from 1900-01 to 2147-12")
    ],
) -> tuple[date, date]:
    first = date(int(month[:4]), int(month[5:]), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following - timedelta(days=1)


@router.get(
    "/reports/monthly", response_class=Response, responses={200: {"model": report.MonthlyReport}}
)
def monthly(
    span: Annotated[tuple[date, date], Depends(month_range)],
    session: SessionDep,
    settings: SettingsDep,
    _user: StatsUser,
    format: Literal["json", "csv", "html"] = "json",
) -> Response:
    result = report.monthly(session, *span, settings)
    if format == "csv":
        name = f"recap-{span[0]:%Y-%m}"
        rows = recap_rows(tables.agency_rows(result.summary), result.agency_response)
        return csv_response(tables.to_csv((*tables.AGENCY_COLUMNS, *RESPONSE_COLUMNS), rows), name)
    if format == "html":
        return HTMLResponse(report.render_html(result))
    return json_response(result)
