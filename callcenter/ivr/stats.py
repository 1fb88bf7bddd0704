"""What the IVR did per local day: sessions, skipped (no FastAGI slot), look-up misses, flags.

A skipped or unchecked caller was queued without the prank check: a supervisor sees here on
which days that happened, and how often.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.ivr.flow import CallerFlag, LookupStatus, Outcome
from callcenter.ivr.models import IvrRun
from callcenter.localtime import key_day, local_day, utc_bounds


class IvrDay(BaseModel):
    day: date
    sessions: int  # every IVR run recorded, skipped ones included
    completed: int
    caller_hung_up: int
    agi_error: int
    skipped_busy: int  # no FastAGI slot: queued at once, unchecked
    lookup_missed: int  # the look-up missed its deadline or failed: queued unchecked
    flagged_prank: int
    withheld: int


class IvrFigures(BaseModel):
    timezone: str
    days: list[IvrDay]


def ivr_days(session: Session, first: date, last: date, tz: ZoneInfo) -> IvrFigures:
    start, end = utc_bounds(first, last, tz)
    rows = session.execute(
        select(IvrRun.started_at, IvrRun.outcome, IvrRun.flag, IvrRun.lookup_status).where(
            IvrRun.started_at >= start, IvrRun.started_at < end
        )
    )
    counts: dict[int, Counter[str]] = {}
    for started_at, outcome, flag, lookup_status in rows:
        day = counts.setdefault(local_day(started_at, tz), Counter())
        day["sessions"] += 1
        day[outcome] += 1
        day["lookup_missed"] += lookup_status == LookupStatus.miss
        day["flagged_prank"] += flag == CallerFlag.prank
        day["withheld"] += flag == CallerFlag.withheld
    return IvrFigures(
        timezone=str(tz),
        days=[
            IvrDay(
                day=key_day(key),
                sessions=c["sessions"],
                completed=c[Outcome.completed],
                caller_hung_up=c[Outcome.caller_hung_up],
                agi_error=c[Outcome.agi_error],
                skipped_busy=c[Outcome.skipped_busy],
                lookup_missed=c["lookup_missed"],
                flagged_prank=c["flagged_prank"],
                withheld=c["withheld"],
            )
            for key, c in sorted(counts.items())
        ],
    )


def run_of(session: Session, *, pbx: str, uniqueid: str) -> IvrRun | None:
    """The IVR run of one call (the API shows it with the call)."""
    return session.scalar(select(IvrRun).where(IvrRun.pbx == pbx, IvrRun.uniqueid == uniqueid))
