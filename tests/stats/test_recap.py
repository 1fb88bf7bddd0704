"""The regency's recap comes straight out of the API, on both databases."""

from __future__ import annotations

from fastapi.testclient import TestClient

from callcenter.incidents.followup import FollowUp
from callcenter.models import Role
from tests.conftest import LoginFn
from tests.recap import AGENCY_SPLIT, Recap

SEASON = {"from": "2025-05-01", "to": "2025-09-30"}


def test_summary_reproduces_the_regency_recap(
    client: TestClient, login: LoginFn, recap: Recap
) -> None:
    response = client.get("/api/v1/stats/summary", params=SEASON, headers=login(Role.supervisor))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"] == {"from": "2025-05-01", "to": "2025-09-30", "timezone": "Asia/Makassar"}
    assert body["total"] == 4428
    assert body["answered"] == 3396
    assert body["abandoned_in_ivr"] == 512
    assert body["abandoned_in_queue"] == 398
    assert body["unanswered"] == 122
    assert body["by_classification"] == {
        "emergency": 167,
        "prank": 1902,
        "non_emergency": 1327,
        "unclassified": 1032,
    }
    assert body["by_reason"]["silent_or_ghost_call"] == 420
    assert body["by_classification_reason"]["prank"]["child_playing"] == 300
    assert body["prank_share"] == round(1902 / 4428, 4)
    emergencies = body["emergencies"]
    assert emergencies["total"] == 167
    assert emergencies["with_incident"] == 167
    assert emergencies["resolved"] == 144
    assert emergencies["not_followed_up"] == 23
    assert emergencies["in_progress"] == 0
    by_agency = {a["code"]: a for a in emergencies["by_agency"]}
    assert len(by_agency) == 7
    for code, (resolved, dropped) in AGENCY_SPLIT.items():
        assert by_agency[code]["total"] == resolved + dropped
        assert by_agency[code]["resolved"] == resolved
        assert by_agency[code]["not_followed_up"] == dropped
        assert recap.primary_status[code, FollowUp.resolved] == resolved
    assert sum(a["total"] for a in by_agency.values()) == 167


def test_local_day_boundaries(client: TestClient, login: LoginFn, recap: Recap) -> None:
    headers = login(Role.admin)
    months = client.get(
        "/api/v1/stats/timeseries", params={**SEASON, "interval": "month"}, headers=headers
    ).json()["points"]
    assert [(p["bucket"], p["total"]) for p in months] == [
        ("2025-05", 912),
        ("2025-06", 874),
        ("2025-07", 903),
        ("2025-08", 881),
        ("2025-09", 858),
    ]
    # 23:30 WITA on 31 May (15:30 UTC) is the last call of 31 May, local time.
    hours = client.get(
        "/api/v1/stats/timeseries",
        params={"from": "2025-05-31", "to": "2025-06-01", "interval": "hour"},
        headers=headers,
    ).json()["points"]
    by_hour = {p["bucket"]: p["total"] for p in hours}
    assert len(hours) == 48
    assert by_hour["2025-05-31T23:00"] >= 1
    assert by_hour["2025-06-01T00:00"] >= 1
    may = client.get(
        "/api/v1/stats/summary", params={"from": "2025-05-01", "to": "2025-05-31"}, headers=headers
    ).json()
    assert may["total"] == 912
    june = client.get(
        "/api/v1/stats/summary", params={"from": "2025-06-01", "to": "2025-06-30"}, headers=headers
    ).json()
    assert june["total"] == 874


def test_monthly_reports_add_up_to_the_season(
    client: TestClient, login: LoginFn, recap: Recap
) -> None:
    headers = login(Role.supervisor)
    totals = {"resolved": 0, "not_followed_up": 0, "total": 0}
    for month in ("2025-05", "2025-06", "2025-07", "2025-08", "2025-09"):
        report = client.get(
            "/api/v1/reports/monthly", params={"month": month}, headers=headers
        ).json()
        emergencies = report["summary"]["emergencies"]
        for key in totals:
            totals[key] += emergencies[key]
    assert totals == {"resolved": 144, "not_followed_up": 23, "total": 167}
