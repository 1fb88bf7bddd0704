import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from callcenter.models import Classification
from tests.builders import make_call, make_caller
from tests.conftest import LoginFn


@pytest.fixture
def andi_calls(session_factory: sessionmaker[Session]) -> list[int]:
    """Three calls from one mobile number (two tagged), one from another caller."""
    with session_factory.begin() as session:
        caller = make_caller(session, number="081234567890", call_count=3)
        other = make_caller(session, number="0388 21234", call_count=1)
        ids = [
            make_call(session, caller=raw, caller_key_id=caller.id).id
            for raw in ("081234567890", "+6281234567890", "6281234567890")
        ]
        make_call(session, caller="0388 21234", caller_key_id=other.id)
    return ids


@pytest.mark.parametrize("number", ["081234567890", "+6281234567890", "6281234567890"])
def test_any_format_finds_the_caller_with_counts_and_calls(
    client: TestClient, login: LoginFn, andi_calls: list[int], number: str
) -> None:
    headers = login()
    for call_id, tag in zip(andi_calls[:2], ("prank", "prank"), strict=True):
        response = client.put(
            f"/api/v1/calls/{call_id}/classification", json={"classification": tag}, headers=headers
        )
        assert response.status_code == 200
    client.put(
        f"/api/v1/calls/{andi_calls[0]}/classification",
        json={"classification": Classification.emergency.value},
        headers=headers,
    )

    response = client.get(f"/api/v1/callers/{number}", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["number"]["e164"] == "+6281234567890"
    assert body["number"]["line_type"] == "mobile"
    assert body["counts"] == {
        "total": 3,
        "emergency": 1,
        "prank": 1,
        "non_emergency": 0,
        "untagged": 1,
    }
    assert [c["id"] for c in body["calls"]["items"]] == andi_calls[::-1]
    assert body["calls"]["total"] == 3


def test_caller_calls_are_paged(client: TestClient, login: LoginFn, andi_calls: list[int]) -> None:
    response = client.get(
        "/api/v1/callers/081234567890", params={"limit": 1, "offset": 1}, headers=login()
    )
    assert [c["id"] for c in response.json()["calls"]["items"]] == [andi_calls[1]]


def test_withheld_caller_is_found_by_its_raw_value(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    """As the listener stores them: withheld calls have no caller row (docs/api.md's
    ``/callers/anonymous`` used to be 404); they are found and counted by the raw value."""
    with session_factory.begin() as session:
        older = make_call(session, caller="anonymous", classification=Classification.prank).id
        call_id = make_call(session, caller="anonymous").id
        make_call(session, caller="<unknown>")  # another raw value: another "caller"
    response = client.get("/api/v1/callers/anonymous", headers=login())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["number"]["status"] == "withheld"
    assert body["number"]["e164"] is None
    assert [c["id"] for c in body["calls"]["items"]] == [call_id, older]
    assert body["counts"] == {
        "total": 2,
        "emergency": 0,
        "prank": 1,
        "non_emergency": 0,
        "untagged": 1,
    }
    assert body["first_seen_at"] is not None
    assert client.get("/api/v1/callers/withheld", headers=login()).status_code == 404


def test_unknown_caller_is_404_and_no_token_is_401(
    client: TestClient, login: LoginFn, andi_calls: list[int]
) -> None:
    assert client.get("/api/v1/callers/081299999999", headers=login()).status_code == 404
    assert client.get("/api/v1/callers/081234567890").status_code == 401
