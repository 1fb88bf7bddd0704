from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from callcenter.models import CallEvent, Classification, Outcome, Role, User
from tests.builders import make_call, make_caller
from tests.conftest import LoginFn

T0 = datetime(2025, 5, 1, 0, 0, tzinfo=UTC)


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@pytest.fixture
def calls(session_factory: sessionmaker[Session]) -> dict[str, int]:
    """Five calls an hour apart, of different callers, outcomes, classifications and operators."""
    with session_factory.begin() as session:
        made = {
            "andi_emergency": make_call(
                session,
                started_at=T0,
                caller="081234567890",
                classification=Classification.emergency,
                operator="Operator Andi",
            ),
            "maria_prank": make_call(
                session,
                started_at=T0 + timedelta(hours=1),
                caller="0388 21234",
                classification=Classification.prank,
                operator="Operator Maria",
            ),
            "abandoned": make_call(
                session,
                started_at=T0 + timedelta(hours=2),
                caller="anonymous",
                outcome=Outcome.abandoned_in_queue,
            ),
            "junk_caller": make_call(
                session, started_at=T0 + timedelta(hours=3), caller="abc#!", operator=None
            ),
            "andi_again": make_call(
                session,
                started_at=T0 + timedelta(hours=4),
                caller="+6281234567890",
                operator="Operator Andi",
            ),
        }
        return {name: call.id for name, call in made.items()}


def test_listing_needs_a_token(client: TestClient) -> None:
    response = client.get("/api/v1/calls")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    bad = client.get("/api/v1/calls", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401


def test_newest_first_with_total_and_paging(
    client: TestClient, login: LoginFn, calls: dict[str, int]
) -> None:
    headers = login(Role.operator)
    everything = client.get("/api/v1/calls", headers=headers)
    names = ("andi_again", "junk_caller", "abandoned", "maria_prank", "andi_emergency")
    newest_first = [calls[name] for name in names]
    assert _ids(everything) == newest_first
    page = client.get("/api/v1/calls", params={"limit": 2, "offset": 2}, headers=headers)
    assert _ids(page) == newest_first[2:4]
    assert page.json()["total"] == 5
    assert (page.json()["limit"], page.json()["offset"]) == (2, 2)


@pytest.mark.parametrize("number", ["081234567890", "+6281234567890", "6281234567890"])
def test_caller_filter_takes_any_format(
    client: TestClient, login: LoginFn, calls: dict[str, int], number: str
) -> None:
    response = client.get("/api/v1/calls", params={"caller": number}, headers=login())
    assert _ids(response) == [calls["andi_again"], calls["andi_emergency"]]


def test_caller_filter_matches_odd_caller_ids_as_received(
    client: TestClient, login: LoginFn, calls: dict[str, int]
) -> None:
    headers = login()
    junk = client.get("/api/v1/calls", params={"caller": "abc#!"}, headers=headers)
    assert _ids(junk) == [calls["junk_caller"]]
    withheld = client.get("/api/v1/calls", params={"caller": "anonymous"}, headers=headers)
    assert _ids(withheld) == [calls["abandoned"]]


def test_time_outcome_classification_and_operator_filters(
    client: TestClient, login: LoginFn, calls: dict[str, int]
) -> None:
    headers = login()

    def ids(**params: Any) -> list[int]:
        return _ids(client.get("/api/v1/calls", params=params, headers=headers))

    window = {"from": (T0 + timedelta(hours=1)).isoformat(), "to": "2025-05-01T11:00:00+08:00"}
    assert ids(**window) == [calls["abandoned"], calls["maria_prank"]]
    assert ids(outcome="abandoned_in_queue") == [calls["abandoned"]]
    assert ids(classification="prank") == [calls["maria_prank"]]
    assert ids(classification=["prank", "emergency"]) == [
        calls["maria_prank"],
        calls["andi_emergency"],
    ]
    assert ids(classification="untagged") == [
        calls["andi_again"],
        calls["junk_caller"],
        calls["abandoned"],
    ]
    assert ids(operator="Operator Andi") == [calls["andi_again"], calls["andi_emergency"]]
    assert ids(operator="Operator Andi", classification="untagged") == [calls["andi_again"]]


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"from": "2025-05-01T00:00:00"}, "query.from", "timezone"),
        ({"outcome": "lost"}, "query.outcome.0", "'answered'"),
        ({"classification": "joke"}, "query.classification.0", "'untagged'"),
        ({"limit": 0}, "query.limit", "greater than or equal to 1"),
    ],
)
def test_bad_filters_are_422_saying_which_and_why(
    client: TestClient, login: LoginFn, params: dict[str, Any], field: str, says: str
) -> None:
    response = client.get("/api/v1/calls", params=params, headers=login())
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_input"
    assert body["errors"][0]["field"] == field
    assert says in body["detail"]


def test_detail_has_events_history_and_etag(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        call = make_call(session)
        session.add(
            CallEvent(
                pbx=call.pbx,
                dedup_key="e1",
                call_id=call.id,
                uniqueid=call.uniqueid,
                linkedid=call.linkedid,
                name="Newchannel",
                event_time=call.started_at,
                raw=f"Event: Newchannel\r\nUniqueid: {call.uniqueid}",
            )
        )
        call_id = call.id
    headers = login(Role.operator, username="andi")
    client.put(
        f"/api/v1/calls/{call_id}/classification",
        json={"classification": "emergency", "note": "house fire"},
        headers=headers,
    )
    # The raw events are opt-in: without ?events=true the answer leaves them out.
    plain = client.get(f"/api/v1/calls/{call_id}", headers=headers)
    assert plain.status_code == 200
    assert plain.json()["events"] is None
    assert plain.json()["history"][0]["changed_by"] == "andi"
    response = client.get(f"/api/v1/calls/{call_id}", params={"events": "true"}, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert response.headers["ETag"] == f'"{body["version"]}"'
    assert [e["name"] for e in body["events"]] == ["Newchannel"]
    assert body["events"][0]["headers"][0] == ["Event", "Newchannel"]
    [change] = body["history"]
    assert change["changed_by"] == "andi"
    assert (change["old_classification"], change["new_classification"]) == (None, "emergency")
    assert change["note"] == "house fire"
    assert body["classification"] == "emergency"


def test_unknown_call_is_404(client: TestClient, login: LoginFn) -> None:
    response = client.get("/api/v1/calls/999999", headers=login())
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_disabled_users_token_stops_working(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    headers = login(Role.operator, username="leaving")
    with session_factory.begin() as session:
        session.execute(update(User).where(User.username == "leaving").values(active=False))
    assert client.get("/api/v1/calls", headers=headers).status_code == 401


def test_openapi_documents_the_calls_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/api/v1/calls", "/api/v1/calls/{call_id}/classification"} <= set(spec["paths"])
    params = {p["name"] for p in spec["paths"]["/api/v1/calls"]["get"]["parameters"]}
    assert {"from", "to", "outcome", "classification", "caller", "operator"} <= params


def test_a_withheld_number_is_shown_to_operators_and_masked_in_lists_for_supervisors(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    """The number of a caller who asked for privacy is kept (call-back): operators and admins
    see it with ``caller_id_private``; a supervisor's lists show it masked."""
    with session_factory.begin() as session:
        caller = make_caller(session, number="038821234")
        call = make_call(
            session, caller="038821234", caller_name="Yohana", private=True, caller_key_id=caller.id
        )
        call_id = call.id
    operator = login(Role.operator, username="op-private")
    supervisor = login(Role.supervisor, username="sup-private")
    admin = login(Role.admin, username="admin-private")

    def listed(headers: dict[str, str]) -> dict[str, Any]:
        response = client.get("/api/v1/calls", headers=headers)
        assert response.status_code == 200, response.text
        [item] = [i for i in response.json()["items"] if i["id"] == call_id]
        return dict(item)

    for headers in (operator, admin):
        item = listed(headers)
        assert (item["caller_id_raw"], item["caller_e164"]) == ("038821234", "+6238821234")
        assert (item["caller_id_private"], item["caller_id_name"]) == (True, "Yohana")
    masked = listed(supervisor)
    assert masked["caller_id_private"] is True
    assert masked["caller_id_raw"] == "******234"
    assert masked["caller_e164"] == "+*******234"
    assert masked["caller_id_name"] is None
    # The caller's page lists the same calls the same way.
    page = client.get("/api/v1/callers/038821234", headers=supervisor).json()
    assert page["calls"]["items"][0]["caller_e164"] == "+*******234"
