"""Several API workers refreshing at once: one rebuilds, the others wait and find it done."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.db import transaction
from callcenter.models import Classification
from callcenter.stats import rollup
from callcenter.stats.models import DailyDetail, HourlyCount
from tests.builders import make_call


def test_concurrent_refreshes_rebuild_once_and_agree(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        for n in range(30):
            make_call(
                session,
                started_at=datetime(2025, 5, 1 + n % 10, 3, n, tzinfo=UTC),
                classification=Classification.prank if n % 3 else Classification.emergency,
            )

    def refresh() -> int:
        with transaction(session_factory) as session:
            return rollup.refresh(session, timezone="Asia/Makassar", safety=timedelta(minutes=10))

    with ThreadPoolExecutor(max_workers=4) as pool:
        rebuilt = list(pool.map(lambda _: refresh(), range(4)))
    assert sorted(rebuilt) == [0, 0, 0, 10]
    with session_factory() as session:
        assert session.scalar(select(func.sum(HourlyCount.total))) == 30
        assert session.scalar(select(func.sum(DailyDetail.calls))) == 30
        assert session.scalar(select(func.sum(HourlyCount.emergency))) == 10
