"""The threshold algorithm gives exactly the plain aggregation, and monthly sums stay exact."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.models import Call, Classification
from callcenter.settings import Settings
from callcenter.stats import rollup
from callcenter.stats.models import DailyPrankCaller, MonthlyPrankCaller
from callcenter.stats.top_callers import _full_scan, _rank, top_prank_callers
from tests.builders import make_call
from tests.recap import Recap

RANGES = [
    (date(2025, 5, 1), date(2025, 9, 30)),
    (date(2025, 5, 20), date(2025, 8, 3)),
    (date(2025, 6, 1), date(2025, 6, 30)),
    (date(2025, 9, 30), date(2025, 9, 30)),
]


def refresh(session: Session, settings: Settings) -> None:
    rollup.refresh(session, timezone=settings.timezone, safety=timedelta(minutes=10))


def monthly_matches_daily(session: Session) -> None:
    month = DailyPrankCaller.local_day // 100
    expected = {
        (int(m), c): int(n)
        for m, c, n in session.execute(
            select(month, DailyPrankCaller.caller_e164, func.sum(DailyPrankCaller.pranks)).group_by(
                month, DailyPrankCaller.caller_e164
            )
        )
    }
    actual = {
        (m, c): n
        for m, c, n in session.execute(
            select(
                MonthlyPrankCaller.month, MonthlyPrankCaller.caller_e164, MonthlyPrankCaller.pranks
            )
        )
    }
    assert actual == expected


def test_top_callers_equal_the_plain_aggregation(
    session_factory: sessionmaker[Session], settings: Settings, recap: Recap
) -> None:
    with session_factory.begin() as session:
        refresh(session, settings)
        monthly_matches_daily(session)
        for first, last in RANGES:
            everyone = _full_scan(session, first, last)
            for limit, min_pranks in ((1, 1), (3, 2), (20, 2), (500, 1)):
                assert top_prank_callers(
                    session, first, last, limit=limit, min_pranks=min_pranks
                ) == _rank(everyone, limit, min_pranks)


def test_monthly_sums_follow_changed_days(
    session_factory: sessionmaker[Session], settings: Settings, recap: Recap
) -> None:
    with session_factory.begin() as session:
        refresh(session, settings)
    with session_factory.begin() as session:
        for _ in range(40):
            make_call(
                session,
                caller="+6281999000001",
                classification=Classification.prank,
                started_at=datetime(2025, 7, 10, 3, 0, tzinfo=UTC),
            )
        # A repeat pranker's call re-tagged: its month loses one.
        call = session.scalars(
            select(Call).where(Call.caller_e164 == "+6281337000002").limit(1)
        ).one()
        call.classification = Classification.non_emergency
    with session_factory.begin() as session:
        refresh(session, settings)
        monthly_matches_daily(session)
        top = top_prank_callers(session, date(2025, 5, 1), date(2025, 9, 30), limit=1, min_pranks=2)
        assert top == [("+6281999000001", 40)]
