"""A skipped or unchecked IVR shows on the call and in the statistics, never as a success."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from callcenter.ivr.models import IvrRun
from callcenter.models import Role
from tests.builders import make_call
from tests.conftest import LoginFn

# 1 May 2025, 10.00 WITA (UTC+8)
MORNING = datetime(2025, 5, 1, 2, 0, tzinfo=UTC)


def ivr_run(
    call_pbx: str,
    uniqueid: str,
    *,
    outcome: str,
    flag: str | None,
    lookup: str | None,
    at: datetime = MORNING,
) -> IvrRun:
    return IvrRun(
        pbx=call_pbx,
        uniqueid=uniqueid,
        channel="PJSIP/trunk-1",
        caller_id_raw="081234567890",
        flag=flag,
        priority=10 if flag != "prank" else 1,
        warning_played=flag == "prank",
        lookup_status=lookup,
        lookup_ms=None if lookup is None else 4,
        prompts_failed=0,
        outcome=outcome,
        started_at=at,
        ended_at=at + timedelta(seconds=4),
    )


def test_call_shows_that_its_ivr_was_skipped(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        skipped = make_call(session, started_at=MORNING)
        plain = make_call(session, started_at=MORNING)
        never = make_call(session, started_at=MORNING)
        session.add(
            ivr_run(
                skipped.pbx, skipped.uniqueid, outcome="skipped_busy", flag="unchecked", lookup=None
            )
        )
        session.add(
            ivr_run(plain.pbx, plain.uniqueid, outcome="completed", flag="none", lookup="found")
        )
        ids = skipped.id, plain.id, never.id
    headers = login(Role.operator)

    shown = [client.get(f"/api/v1/calls/{i}", headers=headers).json()["ivr"] for i in ids]

    assert (shown[0]["skipped"], shown[0]["flag"], shown[0]["outcome"]) == (
        True,
        "unchecked",
        "skipped_busy",
    )
    assert (shown[1]["skipped"], shown[1]["flag"], shown[1]["lookup_status"]) == (
        False,
        "none",
        "found",
    )
    assert shown[2] is None


def test_ivr_figures_per_local_day(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    late_evening = datetime(2025, 5, 1, 16, 30, tzinfo=UTC)  # 00.30 WITA on 2 May
    with session_factory.begin() as session:
        for n, (outcome, flag, lookup) in enumerate(
            [
                ("completed", "none", "found"),
                ("completed", "prank", "found"),
                ("completed", "unchecked", "miss"),
                ("skipped_busy", "unchecked", None),
                ("skipped_busy", "unchecked", None),
                ("caller_hung_up", None, None),
            ]
        ):
            session.add(ivr_run("p", f"1.{n}", outcome=outcome, flag=flag, lookup=lookup))
        session.add(
            ivr_run(
                "p", "2.0", outcome="completed", flag="withheld", lookup="withheld", at=late_evening
            )
        )

    supervisor = login(Role.supervisor)
    response = client.get("/api/v1/stats/ivr?from=2025-05-01&to=2025-05-02", headers=supervisor)
    forbidden = client.get(
        "/api/v1/stats/ivr?from=2025-05-01&to=2025-05-02", headers=login(Role.operator)
    )
    csv = client.get(
        "/api/v1/stats/ivr?from=2025-05-01&to=2025-05-02&format=csv", headers=supervisor
    )

    assert response.status_code == 200, response.text
    first, second = response.json()["days"]
    assert first == {
        "day": "2025-05-01",
        "sessions": 6,
        "completed": 3,
        "caller_hung_up": 1,
        "agi_error": 0,
        "skipped_busy": 2,
        "lookup_missed": 1,
        "flagged_prank": 1,
        "withheld": 0,
    }
    assert (second["day"], second["sessions"], second["withheld"]) == ("2025-05-02", 1, 1)
    assert forbidden.status_code == 403
    assert csv.headers["content-type"].startswith("text/csv")
    assert "skipped_busy" in csv.text.splitlines()[0]
