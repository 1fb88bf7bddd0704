"""Roles, CSV shape, bad input and the printable report."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from callcenter.models import Role
from tests.conftest import LoginFn
from tests.recap import REPEAT_PRANKERS, Recap

SEASON = {"from": "2025-05-01", "to": "2025-09-30"}
ENDPOINTS = [
    "/api/v1/stats/summary",
    "/api/v1/stats/answer-times",
    "/api/v1/stats/timeseries",
    "/api/v1/stats/operators",
    "/api/v1/stats/callers",
    "/api/v1/stats/regions",
]


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("path", [*ENDPOINTS, "/api/v1/reports/monthly"])
def test_statistics_are_for_supervisors_and_admins(
    client: TestClient, login: LoginFn, path: str
) -> None:
    params = {"month": "2025-05"} if "reports" in path else SEASON
    assert client.get(path, params=params).status_code == 401
    assert client.get(path, params=params, headers=login(Role.operator)).status_code == 403
    assert client.get(path, params=params, headers=login(Role.supervisor)).status_code == 200
    assert client.get(path, params=params, headers=login(Role.admin)).status_code == 200


def test_bad_ranges_are_422(client: TestClient, login: LoginFn) -> None:
    headers = login(Role.supervisor)
    summary = "/api/v1/stats/summary"
    bad: list[tuple[str, dict[str, Any]]] = [
        (summary, {}),
        (summary, {"from": "2025-05-01"}),
        (summary, {"from": "2025-06-01", "to": "2025-05-01"}),
        (summary, {"from": "2025-02-30", "to": "2025-03-01"}),
        (summary, {**SEASON, "format": "xml"}),
        ("/api/v1/stats/timeseries", {**SEASON, "interval": "week"}),
        (
            "/api/v1/stats/timeseries",
            {"from": "2024-01-01", "to": "2025-12-31", "interval": "hour"},
        ),
        ("/api/v1/stats/callers", {**SEASON, "limit": 0}),
        ("/api/v1/reports/monthly", {"month": "2025-13"}),
        ("/api/v1/reports/monthly", {}),
    ]
    for path, params in bad:
        assert client.get(path, params=params, headers=headers).status_code == 422, (path, params)


def test_csv_exports_have_a_header_and_one_row_per_item(
    client: TestClient, login: LoginFn, recap: Recap
) -> None:
    headers = login(Role.supervisor)
    response = client.get(
        "/api/v1/stats/answer-times", params={**SEASON, "format": "csv"}, headers=headers
    )
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    rows = read_csv(response.text)
    assert rows[0][:5] == ["date", "total", "answered", "abandoned_in_ivr", "abandoned_in_queue"]
    assert "within_15s" in rows[0]
    assert len(rows) == 1 + 153  # one row per day, May to September
    assert sum(int(r[1]) for r in rows[1:]) == 4428

    series = read_csv(
        client.get(
            "/api/v1/stats/timeseries",
            params={**SEASON, "interval": "month", "format": "csv"},
            headers=headers,
        ).text
    )
    assert series[0] == ["bucket", "total", "emergency", "prank", "non_emergency", "unclassified"]
    assert [r[0] for r in series[1:]] == ["2025-05", "2025-06", "2025-07", "2025-08", "2025-09"]
    assert sum(int(r[2]) for r in series[1:]) == 167

    for path, header in [
        ("operators", ["operator", "answered", "mean_talk_seconds", "tagged"]),
        ("callers", ["caller", "masked", "pranks"]),
        ("regions", ["district", "emergencies"]),
    ]:
        table = read_csv(
            client.get(
                f"/api/v1/stats/{path}", params={**SEASON, "format": "csv"}, headers=headers
            ).text
        )
        assert table[0][: len(header)] == header
        assert len(table) > 1
    regions = read_csv(
        client.get(
            "/api/v1/stats/regions", params={**SEASON, "format": "csv"}, headers=headers
        ).text
    )
    assert len(regions) == 1 + 24
    assert sum(int(r[1]) for r in regions[1:]) == 167

    summary = read_csv(
        client.get(
            "/api/v1/stats/summary", params={**SEASON, "format": "csv"}, headers=headers
        ).text
    )
    assert summary[0] == ["section", "name", "value"]
    assert ["calls", "total", "4428"] in summary
    assert ["emergencies", "resolved", "144"] in summary


def test_callers_are_masked_for_supervisors_and_whole_for_admins(
    client: TestClient, login: LoginFn, recap: Recap
) -> None:
    top_number, top_count = next(iter(REPEAT_PRANKERS.items()))
    whole = client.get("/api/v1/stats/callers", params=SEASON, headers=login(Role.admin)).json()
    assert whole["callers"][0]["caller"] == top_number
    assert whole["callers"][0]["pranks"] >= top_count
    masked = client.get(
        "/api/v1/stats/callers", params=SEASON, headers=login(Role.supervisor)
    ).json()
    first = masked["callers"][0]
    assert first["masked"] is True
    assert first["caller"] != top_number
    assert first["caller"].startswith("+62813")
    assert first["caller"].endswith(top_number[-3:])
    assert "*" in first["caller"]


def test_monthly_report_as_csv_and_printable_html(
    client: TestClient, login: LoginFn, recap: Recap
) -> None:
    headers = login(Role.supervisor)
    rows = read_csv(
        client.get(
            "/api/v1/reports/monthly", params={"month": "2025-05", "format": "csv"}, headers=headers
        ).text
    )
    assert rows[0] == [
        "agency_code",
        "agency_name",
        "kind",
        "emergencies",
        "resolved",
        "not_followed_up",
        "acknowledged",
        "dispatched",
        "pending",
        # How each agency answered (issue 15, callcenter/notify/stats.py).
        "ack_p50_min",
        "ack_p90_min",
        "resolve_p50_min",
        "resolve_p90_min",
        "ack_within_target",
        "escalations",
    ]
    assert len(rows) == 1 + 7 + 1
    total = rows[-1]
    assert total[0] == "total"
    assert int(total[3]) == int(total[4]) + int(total[5])
    page = client.get(
        "/api/v1/reports/monthly", params={"month": "2025-05", "format": "html"}, headers=headers
    )
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Siaga 112 — monthly recap 2025-05</h1>" in page.text
    assert "Polres Timor Tengah Utara" in page.text
    assert "@media print" in page.text
    report = client.get(
        "/api/v1/reports/monthly", params={"month": "2025-05"}, headers=headers
    ).json()
    # People's words, not column names; a count agrees with its noun.
    assert "<th>Not followed up</th>" in page.text
    assert "not_followed_up" not in page.text
    assert "<td>Prank share</td>" in page.text
    assert "Answer time p50 / p90 / p95 / max (s, from reaching the PBX)" in page.text
    emergencies = report["summary"]["emergencies"]["total"]
    noun = "emergency" if emergencies == 1 else "emergencies"
    assert f"<p>{emergencies} {noun}: " in page.text
    assert report["summary"]["total"] == 912
    assert report["summary"]["period"] == {
        "from": "2025-05-01",
        "to": "2025-05-31",
        "timezone": "Asia/Makassar",
    }
