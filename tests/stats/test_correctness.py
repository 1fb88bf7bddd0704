"""The API equals a direct computation over the calls, also right after calls change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from callcenter.cli import main
from callcenter.models import Call, Classification, Outcome, Role
from callcenter.settings import Settings, get_settings
from callcenter.stats import queries, rollup
from callcenter.stats.models import DailyDetail, RollupState
from tests.builders import make_call
from tests.conftest import LoginFn
from tests.recap import Recap
from tests.stats import direct

# Whole months (read from the monthly rollup), days only, and days around whole months.
RANGES = [
    (date(2025, 5, 1), date(2025, 9, 30)),
    (date(2025, 5, 31), date(2025, 6, 1)),
    (date(2025, 7, 14), date(2025, 8, 2)),
    (date(2025, 5, 15), date(2025, 8, 10)),
    (date(2025, 6, 1), date(2025, 6, 30)),
]


def get(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> Any:
    response = client.get(f"/api/v1/stats/{path}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def assert_matches_direct(
    client: TestClient,
    headers: dict[str, str],
    session_factory: sessionmaker[Session],
    settings: Settings,
    first: date,
    last: date,
) -> None:
    span = {"from": first.isoformat(), "to": last.isoformat()}
    with session_factory() as session:
        rows = direct.calls(session, first, last, settings.tz)
    summary = get(client, "summary", headers, **span)
    assert {k: summary[k] for k in direct.summary(rows)} == direct.summary(rows)

    times = get(client, "answer-times", headers, **span)
    expected = direct.answer_times(rows)
    assert {k: times["overall"][k] for k in expected} == expected
    by_day = direct.per_day(rows)
    for day in times["days"]:
        key = int(day["date"].replace("-", ""))
        expected = direct.answer_times(by_day.get(key, []))
        assert {k: day[k] for k in expected} == expected

    series = get(client, "timeseries", headers, interval="day", **span)
    assert [p["total"] for p in series["points"]] == [
        len(by_day.get(int(p["bucket"].replace("-", "")), [])) for p in series["points"]
    ]
    ops = get(client, "operators", headers, **span)["operators"]
    assert [
        {k: o[k] for k in ("operator", "answered", "mean_talk_seconds", "tagged")} for o in ops
    ] == (direct.operators(rows))
    top = get(client, "callers", headers, limit=10, **span)["callers"]
    assert [(c["caller"], c["pranks"]) for c in top] == direct.prank_callers(rows, 10)


def test_every_endpoint_equals_the_direct_computation(
    client: TestClient,
    login: LoginFn,
    recap: Recap,
    session_factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    headers = login(Role.admin)
    for first, last in RANGES:
        assert_matches_direct(client, headers, session_factory, settings, first, last)


def test_calls_per_hour_of_day_equal_the_direct_computation(
    recap: Recap, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    """The supervisor's calls-per-hour chart: 24 sums from the rollup, as counted call by call."""
    with session_factory.begin() as session:
        rollup.refresh(session, timezone=settings.timezone, safety=timedelta(minutes=10))
    with session_factory() as session:
        for first, last in RANGES:
            expected = [0] * 24
            for started in session.scalars(select(Call.started_at)):
                local = started.astimezone(settings.tz)
                if first <= local.date() <= last:
                    expected[local.hour] += 1
            assert sum(expected) > 0
            assert queries.calls_per_hour_of_day(session, first, last) == expected


def test_stats_follow_calls_as_they_change(
    client: TestClient,
    login: LoginFn,
    recap: Recap,
    session_factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    headers = login(Role.admin)
    season = {"from": "2025-05-01", "to": "2025-09-30"}
    before = get(client, "summary", headers, **season)

    # An operator re-tags a prank as a ghost call (as the calls service would: ORM update).
    with session_factory.begin() as session:
        call = session.scalars(
            select(Call).where(Call.classification == Classification.prank).limit(1)
        ).one()
        call.classification = Classification.non_emergency
        call.classification_reason = "silent_or_ghost_call"
    # A new call arrives on 31 May at 23:59 WITA, answered after 61 s.
    with session_factory.begin() as session:
        make_call(
            session,
            started_at=datetime(2025, 5, 31, 15, 59, tzinfo=UTC),
            classification=Classification.prank,
            wait_seconds=61,
            caller="+6281337000001",
        )
    after = get(client, "summary", headers, **season)
    assert after["total"] == before["total"] + 1
    assert after["by_classification"]["prank"] == before["by_classification"]["prank"]
    assert after["by_classification"]["non_emergency"] == (
        before["by_classification"]["non_emergency"] + 1
    )
    assert after["by_reason"]["silent_or_ghost_call"] == (
        before["by_reason"]["silent_or_ghost_call"] + 1
    )
    for first, last in RANGES:
        assert_matches_direct(client, headers, session_factory, settings, first, last)


def test_a_late_commit_inside_the_safety_window_is_counted(
    client: TestClient,
    login: LoginFn,
    session_factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    headers = login(Role.supervisor)
    day = {"from": "2025-05-01", "to": "2025-05-01"}
    with session_factory.begin() as session:
        make_call(session, outcome=Outcome.answered)
    assert get(client, "summary", headers, **day)["total"] == 1
    with session_factory() as session:
        state = session.get(RollupState, 1)
        assert state is not None
        assert state.watermark is not None
        watermark = state.watermark
    # A transaction stamped before the watermark commits only now.
    with session_factory.begin() as session:
        late = make_call(session, outcome=Outcome.abandoned_in_queue, operator=None)
        late.updated_at = watermark - timedelta(seconds=30)
    summary = get(client, "summary", headers, **day)
    assert summary["total"] == 2
    assert summary["abandoned_in_queue"] == 1
    # Nothing changed: the next refresh rebuilds nothing and answers the same.
    assert get(client, "summary", headers, **day) == summary


def test_a_changed_time_zone_rebuilds_everything(
    client: TestClient,
    login: LoginFn,
    session_factory: sessionmaker[Session],
) -> None:
    headers = login(Role.supervisor)
    with session_factory.begin() as session:
        make_call(session, started_at=datetime(2025, 5, 31, 15, 30, tzinfo=UTC))
    may = {"from": "2025-05-31", "to": "2025-05-31"}
    assert get(client, "summary", headers, **may)["total"] == 1
    with session_factory.begin() as session:
        state = session.get(RollupState, 1)
        assert state is not None
        state.timezone = "UTC"  # as if the rollups had been built for another zone
    assert get(client, "summary", headers, **may)["total"] == 1
    with session_factory() as session:
        state = session.get(RollupState, 1)
        assert state is not None
        assert state.timezone == "Asia/Makassar"


def test_stats_refresh_command_builds_and_rebuilds(
    database_url: str,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with session_factory.begin() as session:
        make_call(session, started_at=datetime(2025, 5, 31, 15, 30, tzinfo=UTC))
    monkeypatch.setenv("CALLCENTER_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        assert main(["stats-refresh"]) == 0
        assert "1 day(s) rebuilt" in capsys.readouterr().out
        assert main(["stats-refresh"]) == 0
        assert "0 day(s) rebuilt" in capsys.readouterr().out
        assert main(["stats-refresh", "--rebuild"]) == 0
        assert "1 day(s) rebuilt" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()
    with session_factory() as session:
        assert session.scalars(select(DailyDetail.local_day)).all() == [20250531]


def test_a_core_update_that_keeps_the_version_is_seen(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    headers = login(Role.supervisor)
    day = {"from": "2025-05-01", "to": "2025-05-01"}
    with session_factory.begin() as session:
        call_id = make_call(session, classification=Classification.prank).id
    assert get(client, "summary", headers, **day)["by_classification"]["prank"] == 1
    # A plain UPDATE statement: calls.updated_at moves (its onupdate), calls.version does not.
    with session_factory.begin() as session:
        session.execute(update(Call).where(Call.id == call_id).values(classification="emergency"))
    classes = get(client, "summary", headers, **day)["by_classification"]
    assert classes["prank"] == 0
    assert classes["emergency"] == 1
