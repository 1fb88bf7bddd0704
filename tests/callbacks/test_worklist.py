from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.callbacks.models import CallbackAttempt
from callcenter.db import utcnow
from callcenter.models import Classification, Outcome, Role
from tests.builders import make_call
from tests.conftest import LoginFn


def listed(client: TestClient, headers: dict[str, str]) -> dict[int, dict[str, object]]:
    response = client.get("/api/v1/callbacks", headers=headers)
    assert response.status_code == 200, response.text
    return {item["call_id"]: item for item in response.json()}


def test_abandoned_and_silent_calls_are_listed(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    now = utcnow()
    with session_factory.begin() as session:
        ivr = make_call(
            session,
            caller="081200000001",
            outcome=Outcome.abandoned_in_ivr,
            started_at=now - timedelta(hours=2),
        ).id
        queue = make_call(
            session,
            caller="081200000002",
            outcome=Outcome.abandoned_in_queue,
            started_at=now - timedelta(hours=1),
        ).id
        silent = make_call(session, caller="081200000003", started_at=now - timedelta(minutes=30))
        silent.classification = Classification.prank
        silent.classification_reason = "silent_or_ghost_call"
        silent_id = silent.id
        make_call(session, caller="081200000004", started_at=now - timedelta(minutes=20))
        make_call(
            session,
            caller="anonymous",
            outcome=Outcome.abandoned_in_queue,
            started_at=now - timedelta(minutes=10),
        )
        make_call(
            session,
            caller="081200000005",
            outcome=Outcome.abandoned_in_queue,
            started_at=now - timedelta(days=4),
        )
    items = listed(client, login(Role.operator))
    assert list(items) == [ivr, queue, silent_id]
    assert items[ivr]["why"] == "abandoned_in_ivr"
    assert items[queue]["why"] == "abandoned_in_queue"
    assert items[silent_id]["why"] == "silent_call"
    assert items[ivr]["caller"] == "+6281200000001"
    assert client.get("/api/v1/callbacks").status_code == 401


def test_an_attempt_clears_the_item_or_leaves_it_for_another_try(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    now = utcnow()
    with session_factory.begin() as session:
        reached, tried = (
            make_call(
                session,
                caller=number,
                outcome=Outcome.abandoned_in_queue,
                started_at=now - timedelta(minutes=5),
            ).id
            for number in ("081200000011", "081200000012")
        )
    headers = login(Role.operator)
    done = client.post(
        f"/api/v1/callbacks/{reached}/attempts",
        json={"outcome": "reached", "note": "child playing, parent warned"},
        headers=headers,
    )
    assert done.status_code == 201
    assert done.json()["still_open"] is False
    assert list(listed(client, headers)) == [tried]
    closed = client.post(
        f"/api/v1/callbacks/{reached}/attempts", json={"outcome": "reached"}, headers=headers
    )
    assert closed.status_code == 409
    for attempt in range(1, 4):
        response = client.post(
            f"/api/v1/callbacks/{tried}/attempts", json={"outcome": "no_answer"}, headers=headers
        )
        assert response.json()["still_open"] is (attempt < 3)
        if attempt < 3:
            assert listed(client, headers)[tried]["attempts"] == attempt
    assert listed(client, headers) == {}


def test_a_newer_call_from_the_same_number_clears_the_item(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    now = utcnow()
    with session_factory.begin() as session:
        old = make_call(
            session,
            caller="081200000021",
            outcome=Outcome.abandoned_in_ivr,
            started_at=now - timedelta(minutes=30),
        ).id
    headers = login(Role.operator)
    assert list(listed(client, headers)) == [old]
    with session_factory.begin() as session:
        make_call(session, caller="+6281200000021", started_at=now - timedelta(minutes=1))
    assert listed(client, headers) == {}
    late = client.post(
        f"/api/v1/callbacks/{old}/attempts", json={"outcome": "reached"}, headers=headers
    )
    assert late.status_code == 409


def test_bad_attempts_change_nothing(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    now = utcnow()
    with session_factory.begin() as session:
        open_id = make_call(
            session,
            caller="081200000031",
            outcome=Outcome.abandoned_in_queue,
            started_at=now - timedelta(minutes=5),
        ).id
        answered = make_call(session, caller="081200000032", started_at=now).id
    headers = login(Role.operator)
    cases = [
        (open_id, {"outcome": "maybe"}, 422),
        (open_id, {}, 422),
        (answered, {"outcome": "reached"}, 409),
        (999999, {"outcome": "reached"}, 404),
    ]
    for call_id, body, expected in cases:
        response = client.post(f"/api/v1/callbacks/{call_id}/attempts", json=body, headers=headers)
        assert response.status_code == expected, response.text
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(CallbackAttempt)) == 0
    assert list(listed(client, headers)) == [open_id]


def test_an_overflowed_caller_still_queued_is_not_offered_a_call_back(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    """Emergency112Overflow means a queue round timed out and the caller is queued again: no
    call-back while the caller waits; one once the caller gives up. A withheld (private)
    number is still called back: the number is known."""
    now = utcnow()
    with session_factory.begin() as session:
        waiting = make_call(session, caller="081200000031", outcome=Outcome.queued, started_at=now)
        waiting.overflows = 1
        waiting_id = waiting.id
        private = make_call(
            session,
            caller="081200000032",
            outcome=Outcome.abandoned_in_queue,
            started_at=now - timedelta(minutes=5),
            private=True,
        )
        private.overflows = 2
        private_id = private.id
    items = listed(client, login(Role.operator))
    assert waiting_id not in items
    assert items[private_id]["why"] == "abandoned_in_queue"
