"""Statistics and monthly reports over REST, for supervisors and admins.

Every request first waits until the rollups include every commit made before it (the refresher
thread does the work, once for all readers waiting: a reader takes no write lock), then reads:
once for all the readers served by that refresh who ask the same question (stats.shared).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from callcenter.api.auth import SupervisorUser, active_user, admit, bearer_token, claims_from_token
from callcenter.api.deps import SessionDep, SettingsDep
from callcenter.audit.routes import record_personal_read
from callcenter.errors import InvalidInput
from callcenter.ivr.stats import IvrDay, IvrFigures, ivr_days
from callcenter.models import Role, User
from callcenter.notify.stats import RESPONSE_COLUMNS, recap_rows
from callcenter.settings import Settings
from callcenter.stats import queries, report, tables
from callcenter.stats.admitted import RecentlyAdmitted
from callcenter.stats.refresher import RollupRefresher
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
from callcenter.stats.shared import Answer, SharedReads

router = APIRouter(prefix="/api/v1", tags=["statistics"])
Format = Literal["json", "csv"]
MAX_DAYS = 3700
MAX_HOURLY_DAYS = 400


@dataclass(frozen=True, slots=True)
class FreshReader:
    """A statistics user whose request the rollups have caught up with (refresh
    ``generation``)."""

    user: User
    generation: int
    shared: SharedReads
    settings: Settings

    async def answer(self, question: Hashable, compute: Callable[[Session], Answer]) -> Response:
        """``compute``'s answer, computed once for every reader of ``question`` served by this
        refresh: ``question`` must name everything the answer depends on."""
        found = await self.shared.answer(question, self.generation, compute)
        return Response(found.body, media_type=found.media_type, headers=dict(found.headers))


async def fresh_rollups(
    bearer: Annotated[str | None, Depends(bearer_token)], request: Request
) -> FreshReader:
    """The statistics user, after the rollups caught up with the calls table.

    One hop to a commit thread checks the user (at most once a second: stats.admitted) in a
    session of its own, which gives its connection back at once: eighty readers waiting for a
    refresh must not hold the connections the refresh (and everyone else) needs, nor each take
    a request thread of their own. No request-scoped session, and the settings come with the
    reader: a reader's request stays light on the event loop, because eighty of them wake
    together after each refresh while operators tag calls on that same loop.
    """
    # From the app's state, not dependencies: each dependency FastAPI solves per request.
    state = request.app.state
    token = claims_from_token(bearer, state.settings)
    factory: sessionmaker[Session] = state.sessionmaker

    def check() -> User:
        with factory() as session:
            user = active_user(session, token)
            admit(user, Role.supervisor)
            return user  # detached on close, its columns loaded

    admitted: RecentlyAdmitted = state.admitted_readers
    user = admitted.get(token)
    if user is None:
        user = await asyncio.get_running_loop().run_in_executor(state.commit_executor, check)
        admitted.add(token, user)
    refresher: RollupRefresher = state.rollup_refresher
    generation = await refresher.fresh()
    return FreshReader(user, generation, state.shared_reads, state.settings)


StatsUser = Annotated[FreshReader, Depends(fresh_rollups)]


# The rollups key an hour as the integer YYYYMMDDHH (an INTEGER column): 2147 is the last year.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2147, 12, 31)
MONTH_PATTERN = r"^(19\d\d|20\d\d|21[0-3]\d|214[0-7])-(0[1-9]|1[0-2])$"


def date_range(from_: date, to: date) -> tuple[date, date]:
    if from_ < FIRST_DAY or to > LAST_DAY:
        # A day next to date's own limits has no UTC bounds (nor a following day).
        raise InvalidInput(f"days go from {FIRST_DAY} to {LAST_DAY}", field="from")
    if from_ > to:
        raise InvalidInput("`from` is after `to`", field="from")
    if (to - from_).days >= MAX_DAYS:
        raise InvalidInput(f"a range is at most {MAX_DAYS} days", field="to")
    return from_, to


# The dependencies are async: a pure check needs no worker thread (FastAPI runs a plain `def`
# dependency in its thread pool, a hop per request that eighty readers take at once).
async def range_query(
    from_: Annotated[
        date, Query(alias="from", description="first local day, YYYY-MM-DD (from 1900-01-01)")
    ],
    to: Annotated[
        date, Query(description="last local day (inclusive), YYYY-MM-DD (to 2147-12-31)")
    ],
) -> tuple[date, date]:
    return date_range(from_, to)


Range = Annotated[tuple[date, date], Depends(range_query)]


def json_answer(model: BaseModel) -> Answer:
    # Serialised by pydantic-core directly: jsonable_encoder takes ~50 ms on an hourly series.
    return Answer(model.model_dump_json(by_alias=True).encode(), "application/json")


def csv_answer(body: str, name: str) -> Answer:
    return Answer(
        body.encode(),
        "text/csv; charset=utf-8",
        (("Content-Disposition", f'attachment; filename="{name}.csv"'),),
    )


def json_response(model: BaseModel) -> Response:
    found = json_answer(model)
    return Response(found.body, media_type=found.media_type)


def csv_response(body: str, name: str) -> Response:
    found = csv_answer(body, name)
    return Response(found.body, media_type=found.media_type, headers=dict(found.headers))


@router.get("/stats/summary", response_class=Response, responses={200: {"model": Summary}})
async def summary(span: Range, reader: StatsUser, format: Format = "json") -> Response:
    settings = reader.settings

    def compute(session: Session) -> Answer:
        result = queries.summary(session, *span, settings)
        if format == "csv":
            rows = tables.summary_rows(result)
            return csv_answer(tables.to_csv(["section", "name", "value"], rows), "summary")
        return json_answer(result)

    return await reader.answer(("summary", span, format), compute)


@router.get(
    "/stats/answer-times", response_class=Response, responses={200: {"model": AnswerTimesReport}}
)
async def answer_times(span: Range, reader: StatsUser, format: Format = "json") -> Response:
    settings = reader.settings

    def compute(session: Session) -> Answer:
        result = queries.answer_times(session, *span, settings)
        if format == "csv":
            return csv_answer(tables.models_csv(result.days, AnswerTimes), "answer-times")
        return json_answer(result)

    return await reader.answer(("answer-times", span, format), compute)


@router.get("/stats/timeseries", response_class=Response, responses={200: {"model": TimeSeries}})
async def timeseries(
    span: Range,
    reader: StatsUser,
    interval: Literal["hour", "day", "month"] = "day",
    format: Format = "json",
) -> Response:
    settings = reader.settings
    if interval == "hour" and (span[1] - span[0]).days >= MAX_HOURLY_DAYS:
        raise InvalidInput(f"hourly series cover at most {MAX_HOURLY_DAYS} days", field="to")

    def compute(session: Session) -> Answer:
        result = queries.timeseries(session, *span, interval, settings)
        if format == "csv":
            return csv_answer(tables.models_csv(result.points, TimePoint), "timeseries")
        return json_answer(result)

    return await reader.answer(("timeseries", span, interval, format), compute)


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
async def operators(span: Range, reader: StatsUser, format: Format = "json") -> Response:
    settings = reader.settings

    def compute(session: Session) -> Answer:
        result = queries.operators(session, *span, settings)
        if format == "csv":
            return csv_answer(tables.models_csv(result.operators, OperatorFigures), "operators")
        return json_answer(result)

    return await reader.answer(("operators", span, format), compute)


# The one statistic naming callers: who read it goes to the audit log.
@router.get(
    "/stats/callers",
    response_class=Response,
    responses={200: {"model": Callers}},
    dependencies=[Depends(record_personal_read)],
)
async def callers(
    span: Range,
    reader: StatsUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    min_pranks: Annotated[int, Query(ge=1, le=1_000_000)] = 2,
    format: Format = "json",
) -> Response:
    settings = reader.settings
    masked = reader.user.role is not Role.admin  # only admins see whole numbers

    def compute(session: Session) -> Answer:
        result = queries.callers(
            session, *span, settings, limit=limit, min_pranks=min_pranks, masked=masked
        )
        if format == "csv":
            return csv_answer(tables.models_csv(result.callers, CallerFigures), "callers")
        return json_answer(result)

    return await reader.answer(("callers", span, limit, min_pranks, masked, format), compute)


@router.get("/stats/regions", response_class=Response, responses={200: {"model": Regions}})
async def regions(span: Range, reader: StatsUser, format: Format = "json") -> Response:
    settings = reader.settings

    def compute(session: Session) -> Answer:
        result = queries.regions(session, *span, settings)
        if format == "csv":
            return csv_answer(tables.models_csv(result.regions, RegionFigures), "regions")
        return json_answer(result)

    return await reader.answer(("regions", span, format), compute)


def month_range(month: str) -> tuple[date, date]:
    first = date(int(month[:4]), int(month[5:]), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following - timedelta(days=1)


async def month_query(
    month: Annotated[
        str, Query(pattern=MONTH_PATTERN, description="YYYY-MM, from 1900-01 to 2147-12")
    ],
) -> tuple[date, date]:
    return month_range(month)


@router.get(
    "/reports/monthly", response_class=Response, responses={200: {"model": report.MonthlyReport}}
)
async def monthly(
    span: Annotated[tuple[date, date], Depends(month_query)],
    reader: StatsUser,
    format: Literal["json", "csv", "html"] = "json",
) -> Response:
    settings = reader.settings

    def compute(session: Session) -> Answer:
        result = report.monthly(session, *span, settings)
        if format == "csv":
            name = f"recap-{span[0]:%Y-%m}"
            rows = recap_rows(tables.agency_rows(result.summary), result.agency_response)
            columns = (*tables.AGENCY_COLUMNS, *RESPONSE_COLUMNS)
            return csv_answer(tables.to_csv(columns, rows), name)
        if format == "html":
            return Answer(report.render_html(result).encode(), "text/html; charset=utf-8")
        return json_answer(result)

    return await reader.answer(("monthly", span, format), compute)
