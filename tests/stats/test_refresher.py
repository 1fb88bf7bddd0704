"""The rollup refresher: every reader gets figures that include the commits made before it asked,
and a reader of a quiet line is not held back by the pause meant for a busy one."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.models import Classification
from callcenter.stats import refresher as refresher_module
from callcenter.stats.models import DailyDetail
from callcenter.stats.refresher import RollupRefresher
from tests.builders import make_call


def _pranks(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        total = session.scalar(
            select(func.coalesce(func.sum(DailyDetail.calls), 0)).where(
                DailyDetail.classification == Classification.prank.value
            )
        )
        return int(total or 0)


def _prank_call(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        make_call(session, classification=Classification.prank)


def test_a_quiet_line_is_read_at_once_and_a_busy_one_still_paces_its_refreshes(
    engine: Engine, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    _prank_call(session_factory)
    refresher = RollupRefresher(engine, timezone="Asia/Makassar", safety=timedelta(0))

    async def scenario() -> None:
        monkeypatch.setattr(refresher_module, "MIN_INTERVAL_S", 0.0)
        await refresher.fresh()  # builds the rollups
        await refresher.fresh()  # finds nothing changed
        assert _pranks(session_factory) == 1
        # From here an hour's pause after a refresh that rebuilt something.
        monkeypatch.setattr(refresher_module, "MIN_INTERVAL_S", 3600.0)
        await asyncio.wait_for(refresher.fresh(), 30)  # the last found nothing: no pause
        _prank_call(session_factory)
        await asyncio.wait_for(refresher.fresh(), 30)  # nor now: it rebuilds the day
        assert _pranks(session_factory) == 2  # the reader sees the commit made before it asked
        # That refresh rebuilt a day: the next waits out the pause (operators' tags go first).
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(refresher.fresh(), 1.0)

    try:
        asyncio.run(scenario())
    finally:
        refresher.close()
