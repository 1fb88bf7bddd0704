import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.api.auth import admit
from callcenter.calls import service
from callcenter.errors import Conflict
from callcenter.models import Call, Caller, Classification, ClassificationChange, Role, User
from tests.builders import make_call, make_caller, make_user
from tests.conftest import LoginFn


@pytest.fixture
def call_id(session_factory: sessionmaker[Session]) -> int:
    """An untagged call from a caller who already has one emergency on record."""
    with session_factory.begin() as session:
        caller = make_caller(session, number="081234567890", call_count=2, emergency_count=1)
        return make_call(session, caller="081234567890", caller_key_id=caller.id).id


def _put(client: TestClient, call_id: int, headers: dict[str, str], **body: object):
    return client.put(f"/api/v1/calls/{call_id}/classification", json=body, headers=headers)


def _state(factory: sessionmaker[Session], call_id: int) -> tuple[object, ...]:
    """What a failed request must leave untouched: the call's tag and version, history, counts."""
    with factory() as session:
        call = session.get_one(Call, call_id)
        changes = session.scalars(
            select(ClassificationChange.new_classification).where(
                ClassificationChange.call_id == call_id
            )
        ).all()
        caller = session.scalars(select(Caller)).one()
        counts = (caller.emergency_count, caller.prank_count, caller.non_emergency_count)
        return call.classification, call.version, list(changes), counts


def test_every_change_is_recorded_with_who_and_counts_follow(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session], call_id: int
) -> None:
    andi = login(Role.operator, username="andi")
    maria = login(Role.supervisor, username="maria")

    first = _put(client, call_id, andi, classification="prank", reason="child_playing")
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 2
    assert first.headers["ETag"] == '"2"'
    second = _put(
        client, call_id, maria, classification="emergency", note="caller called back", version=2
    )
    assert second.status_code == 200, second.text
    third = _put(client, call_id, andi, classification="non_emergency", reason="misdial")
    assert third.json()["classification"] == "non_emergency"
    assert third.json()["classification_reason"] == "misdial"

    with session_factory() as session:
        changes = session.scalars(
            select(ClassificationChange).order_by(ClassificationChange.id)
        ).all()
        who = {u.id: u.username for u in session.scalars(select(User))}
        assert [
            (who[c.changed_by_id], c.old_classification, c.new_classification, c.new_reason)
            for c in changes
        ] == [
            ("andi", None, Classification.prank, "child_playing"),
            ("maria", Classification.prank, Classification.emergency, None),
            ("andi", Classification.emergency, Classification.non_emergency, "misdial"),
        ]
        assert changes[1].note == "caller called back"
        assert changes[1].old_reason == "child_playing"
        assert all(c.changed_at is not None for c in changes)
    # The caller had one emergency before; this call went prank -> emergency -> non_emergency.
    assert _state(session_factory, call_id) == (
        Classification.non_emergency,
        4,
        [Classification.prank, Classification.emergency, Classification.non_emergency],
        (1, 0, 1),
    )


def test_repeating_the_same_tag_writes_nothing(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session], call_id: int
) -> None:
    headers = login()
    _put(client, call_id, headers, classification="prank")
    before = _state(session_factory, call_id)
    again = _put(client, call_id, headers, classification="prank")
    assert again.status_code == 200
    assert again.headers["ETag"] == '"2"'
    assert _state(session_factory, call_id) == before


@pytest.mark.parametrize(
    ("if_match", "body_version"),
    [('"1"', None), ('W/"1"', None), (None, 1), ('"2"', 1), ('"1"', 2)],
)
def test_stale_writes_are_409_and_change_nothing(
    client: TestClient,
    login: LoginFn,
    session_factory: sessionmaker[Session],
    call_id: int,
    if_match: str | None,
    body_version: int | None,
) -> None:
    headers = login()
    _put(client, call_id, headers, classification="prank")  # version 1 -> 2
    before = _state(session_factory, call_id)
    extra = {"If-Match": if_match} if if_match else {}
    body: dict[str, object] = {"classification": "emergency"}
    if body_version is not None:
        body["version"] = body_version
    response = _put(client, call_id, headers | extra, **body)
    assert response.status_code == 409, response.text
    assert response.json()["current_version"] == 2
    assert "read it again" in response.json()["detail"]
    assert _state(session_factory, call_id) == before


def test_fresh_if_match_and_star_are_accepted(
    client: TestClient, login: LoginFn, call_id: int
) -> None:
    headers = login()
    read = client.get(f"/api/v1/calls/{call_id}", headers=headers)
    ok = _put(client, call_id, headers | {"If-Match": read.headers["ETag"]}, classification="prank")
    assert ok.status_code == 200
    star = _put(client, call_id, headers | {"If-Match": "*"}, classification="emergency")
    assert star.status_code == 200
    assert star.headers["ETag"] == '"3"'


def test_a_writer_in_between_read_and_write_gets_409(
    engine: Engine, session_factory: sessionmaker[Session], call_id: int
) -> None:
    """The version check is in the UPDATE itself, not only in the comparison before it."""
    with session_factory.begin() as session:
        user_id = make_user(session).id

    def classify(session: Session, tag: Classification) -> None:
        service.classify_call(
            session.connection(),
            call_id=call_id,
            user_id=user_id,
            admit=lambda user: admit(user, Role.operator),
            classification=tag,
            reason=None,
            note=None,
            allowed_reasons=[],
        )

    interfered: list[bool] = []

    def another_operator_first(_conn, _cursor, statement: str, *_args) -> None:
        # Right after the slow request read the call: another request classifies and commits.
        if statement.startswith("SELECT users.active") and not interfered:
            interfered.append(True)
            with session_factory.begin() as fast:
                classify(fast, Classification.prank)

    event.listen(engine, "after_cursor_execute", another_operator_first)
    try:
        with session_factory() as slow, pytest.raises(Conflict):
            classify(slow, Classification.emergency)
    finally:
        event.remove(engine, "after_cursor_execute", another_operator_first)
    assert interfered
    state = _state(session_factory, call_id)
    assert state[0] == Classification.prank
    assert state[2] == [Classification.prank]
    assert state[3] == (1, 1, 0)


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"classification": "joke"}, "body.classification", "'emergency', 'prank' or"),
        ({}, "body.classification", "Field required"),
        ({"classification": "prank", "version": "x"}, "body.version", "integer"),
        ({"classification": "prank", "colour": "red"}, "body.colour", "Extra inputs"),
        ({"classification": "prank", "note": "x" * 2001}, "body.note", "at most 2000"),
    ],
)
def test_bad_values_are_422_naming_what_is_allowed_and_change_nothing(
    client: TestClient,
    login: LoginFn,
    session_factory: sessionmaker[Session],
    call_id: int,
    body: dict[str, object],
    field: str,
    says: str,
) -> None:
    before = _state(session_factory, call_id)
    response = _put(client, call_id, login(), **body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
    assert says in response.json()["detail"]
    assert _state(session_factory, call_id) == before


def test_unknown_reason_is_422_listing_the_reasons(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session], call_id: int
) -> None:
    before = _state(session_factory, call_id)
    response = _put(client, call_id, login(), classification="prank", reason="bored")
    assert response.status_code == 422
    assert "silent_or_ghost_call" in response.json()["detail"]
    assert "misdial" in response.json()["allowed"]
    assert _state(session_factory, call_id) == before


def test_unknown_call_is_404_and_no_token_is_401(
    client: TestClient, login: LoginFn, call_id: int
) -> None:
    assert _put(client, 999999, login(), classification="prank").status_code == 404
    assert _put(client, call_id, {}, classification="prank").status_code == 401
    bad = {"If-Match": "yesterday"}
    assert _put(client, call_id, login() | bad, classification="prank").status_code == 422


def test_a_call_without_a_caller_row_is_still_classified(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        call_id = make_call(session, caller="anonymous").id
    response = _put(client, call_id, login(), classification="prank")
    assert response.status_code == 200
    assert response.json()["classification"] == "prank"
