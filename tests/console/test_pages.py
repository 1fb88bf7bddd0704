"""The console over HTTP (in-process): log-in, cookie, CSRF, roles, language, offline assets.

What a browser does with the pages is in test_browser.py; here, what the server itself refuses.
"""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.console import web
from callcenter.db import utcnow
from callcenter.models import Call, Classification, LoginFailure, Role, User
from callcenter.settings import Settings
from callcenter.users.login import username_key
from callcenter.users.security import issue_token
from tests.builders import PASSWORD, make_call, make_user


def csrf_in(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def log_in(client: TestClient, username: str, password: str = PASSWORD) -> tuple[int, str]:
    form = client.get("/console/login")
    response = client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf": csrf_in(form.text)},
        follow_redirects=False,
    )
    return response.status_code, response.headers.get("location", "")


def new_user(factory: sessionmaker[Session], role: Role, **fields: object) -> str:
    with factory.begin() as session:
        return make_user(session, role=role, **fields).username  # type: ignore[arg-type]


def test_login_sets_a_session_cookie_httponly_samesite_and_lands_on_the_role_home(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    operator = new_user(session_factory, Role.operator)
    status, location = log_in(client, operator)
    assert (status, location) == (303, "/console/")
    cookie = next(c for c in client.cookies.jar if c.name == web.SESSION_COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite", "").lower() == "lax"
    assert not cookie.secure  # plain HTTP here; over TLS it is Secure (next test)
    page = client.get("/console/")
    assert page.status_code == 200
    assert "Antrean langsung" in page.text

    supervisor = new_user(session_factory, Role.supervisor)
    assert log_in(client, supervisor)[1] == "/console/supervisor"


def test_the_cookie_is_secure_behind_tls(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    from callcenter.app import create_app

    operator = new_user(session_factory, Role.operator)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        log_in(client, operator)
        cookie = next(c for c in client.cookies.jar if c.name == web.SESSION_COOKIE)
        assert cookie.secure


def test_a_wrong_password_is_refused_and_the_api_lockout_applies(
    client: TestClient, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    operator = new_user(session_factory, Role.operator)
    for _ in range(settings.login_max_failures):
        form = client.get("/console/login")
        response = client.post(
            "/console/login",
            data={"username": operator, "password": "wrong-password", "csrf": csrf_in(form.text)},
        )
        assert response.status_code == 401
        assert "Nama pengguna atau kata sandi salah" in response.text
    # Locked now: even the right password is refused, and the page says why.
    form = client.get("/console/login")
    response = client.post(
        "/console/login",
        data={"username": operator, "password": PASSWORD, "csrf": csrf_in(form.text)},
    )
    assert response.status_code == 429  # as the API answers a locked name
    assert "Terlalu banyak percobaan" in response.text
    with session_factory() as session:
        locked = session.get(LoginFailure, username_key(operator))
        assert locked is not None
        assert locked.locked_until is not None
    # The API says the same for this account.
    api = client.post("/api/v1/auth/token", data={"username": operator, "password": PASSWORD})
    assert api.status_code == 429
    assert "Retry-After" in api.headers


def test_login_without_its_csrf_token_is_refused(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    operator = new_user(session_factory, Role.operator)
    client.get("/console/login")
    response = client.post("/console/login", data={"username": operator, "password": PASSWORD})
    assert response.status_code == 403
    assert web.SESSION_COOKIE not in client.cookies


def test_pages_need_a_session_and_an_expired_one_goes_back_to_login(
    client: TestClient, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    response = client.get("/console/", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/console/login")
    assert client.get("/console/board.json").status_code == 401

    with session_factory.begin() as session:
        user_id = make_user(session, role=Role.operator).id
    expired = issue_token(
        user_id=user_id,
        secret=settings.token_secret.get_secret_value(),
        ttl=timedelta(minutes=1),
        now=utcnow() - timedelta(minutes=5),
    )
    client.cookies.set(web.SESSION_COOKIE, expired, path="/console")
    response = client.get("/console/", follow_redirects=False)
    assert response.headers["location"] == "/console/login?expired=1"
    assert "Sesi Anda berakhir" in client.get(response.headers["location"]).text


def test_logout_ends_the_session(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    log_in(client, new_user(session_factory, Role.operator))
    page = client.get("/console/")
    response = client.post(
        "/console/logout", data={"csrf": csrf_in(page.text)}, follow_redirects=False
    )
    assert response.headers["location"] == "/console/login"
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_an_operator_is_refused_the_supervisor_and_admin_pages_by_the_server(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    log_in(client, new_user(session_factory, Role.operator))
    csrf = csrf_in(client.get("/console/").text)
    for path in (
        "/console/supervisor",
        "/console/supervisor/recap?month=2025-05",
        "/console/admin",
    ):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "Halaman ini tidak untuk peran Anda" in response.text
    # Posting straight to an admin form, with a valid CSRF token, changes nothing.
    response = client.post(
        "/console/admin/users",
        data={"csrf": csrf, "username": "intruder", "password": "x" * 12, "role": "admin"},
    )
    assert response.status_code == 403
    with session_factory() as session:
        assert session.scalars(select(User).where(User.username == "intruder")).first() is None
    # And the menu does not offer them.
    board = client.get("/console/").text
    assert "/console/supervisor" not in board
    assert "/console/admin" not in board


def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    log_in(client, new_user(session_factory, Role.operator))
    with session_factory.begin() as session:
        call = make_call(session)
        call_id, version = call.id, call.version
    form = {"classification": "prank", "version": str(version)}
    for csrf in (None, "forged"):
        data = form if csrf is None else {**form, "csrf": csrf}
        response = client.post(f"/console/calls/{call_id}/classification", data=data)
        assert response.status_code == 403
        assert "Formulir ini kedaluwarsa atau tidak sah" in response.text
    with session_factory() as session:
        stored = session.get(Call, call_id)
        assert stored is not None
        assert stored.classification is None


def test_tagging_through_the_console_and_a_stale_version_is_explained(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    log_in(client, new_user(session_factory, Role.operator))
    with session_factory.begin() as session:
        call_id = make_call(session).id
    page = client.get(f"/console/calls/{call_id}")
    csrf = csrf_in(page.text)
    response = client.post(
        f"/console/calls/{call_id}/classification",
        data={"csrf": csrf, "classification": "emergency", "version": "1"},
    )
    assert response.status_code == 200
    assert "Klasifikasi disimpan" in response.text
    # The same form again, with the version read before the change: 409, and the page reloaded.
    response = client.post(
        f"/console/calls/{call_id}/classification",
        data={"csrf": csrf, "classification": "prank", "version": "1"},
    )
    assert response.status_code == 409
    assert "sudah diubah orang lain" in response.text
    with session_factory() as session:
        stored = session.get(Call, call_id)
        assert stored is not None
        assert stored.classification is Classification.emergency
        assert 'name="version" value="2"' in response.text


def test_english_is_one_click_away_and_only_console_paths_are_followed(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    log_in(client, new_user(session_factory, Role.operator))
    assert '<html lang="id">' in client.get("/console/").text
    response = client.get("/console/lang/en?next=/console/callbacks", follow_redirects=False)
    assert response.headers["location"] == "/console/callbacks"
    page = client.get("/console/callbacks")
    assert '<html lang="en">' in page.text
    assert "Call-backs" in page.text
    evil = client.get("/console/lang/id?next=https://evil.example/", follow_redirects=False)
    assert evil.headers["location"] == "/console/"


def test_every_asset_is_served_by_the_backend_itself(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    log_in(client, new_user(session_factory, Role.admin))
    for path in ("/console/", "/console/supervisor", "/console/admin", "/console/login"):
        html = client.get(path).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources
        assert all(not s.startswith(("http:", "https:", "//")) for s in sources), sources
    for asset in ("console.js", "console.css"):
        assert client.get(f"/console/static/{asset}").status_code == 200


def test_admin_creates_links_resets_and_deactivates_a_user(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    log_in(client, new_user(session_factory, Role.admin))
    csrf = csrf_in(client.get("/console/admin").text)
    added = client.post(
        "/console/admin/agencies",
        data={"csrf": csrf, "code": "damkar_x", "name": "Damkar X", "kind": "fire"},
    )
    assert added.status_code == 200
    # an agency's kind in words, not its configuration code
    assert "<td>Damkar X</td><td>pemadam kebakaran</td>" in added.text
    response = client.post(
        "/console/admin/users",
        data={
            "csrf": csrf,
            "username": "budi",
            "password": "budi-pass-112",
            "role": "operator",
            "queue_member_name": "Operator Budi",
            "queue_member_interface": "PJSIP/op3",
        },
    )
    assert response.status_code == 200
    with session_factory() as session:
        budi = session.scalars(select(User).where(User.username == "budi")).one()
        assert (budi.queue_member_name, budi.queue_member_interface) == (
            "Operator Budi",
            "PJSIP/op3",
        )
    client.post(
        f"/console/admin/users/{budi.id}/password",
        data={"csrf": csrf, "password": "new-pass-1234"},
    )
    client.post(f"/console/admin/users/{budi.id}/active", data={"csrf": csrf, "active": "false"})
    other = TestClient(client.app)
    assert log_in(other, "budi", "new-pass-1234")[0] == 401  # disabled
    client.post(f"/console/admin/users/{budi.id}/active", data={"csrf": csrf, "active": "true"})
    assert log_in(other, "budi", "new-pass-1234") == (303, "/console/")
    # A bad password is refused with a message, and nothing changes.
    response = client.post(
        f"/console/admin/users/{budi.id}/password", data={"csrf": csrf, "password": "short"}
    )
    assert response.status_code == 422
    assert log_in(TestClient(client.app), "budi", "new-pass-1234")[0] == 303


def test_the_supervisor_reads_any_date_range_and_downloads_the_monthly_recap(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from datetime import UTC, datetime

    log_in(client, new_user(session_factory, Role.supervisor))
    with session_factory.begin() as session:
        for n in range(3):
            make_call(
                session,
                started_at=datetime(2025, 5, 2, 2, n, tzinfo=UTC),  # 10.0n WITA
                classification=Classification.prank if n else Classification.emergency,
            )
    page = client.get("/console/supervisor?from=2025-05-01&to=2025-05-31")
    assert page.status_code == 200
    assert "<title>Supervisor · Siaga 112</title>" in page.text
    assert page.text.count('id="by-agency"') == 1
    assert "1 Mei 2025" in page.text  # Indonesian dates
    # Three calls at 10.00 WITA in the per-hour chart, and the day's mix in its table.
    assert "<title>10: 3</title>" in page.text
    assert "<td>2025-05-02</td><td>1</td><td>2</td><td>0</td><td>0</td>" in page.text
    csv = client.get("/console/supervisor/recap?month=2025-05&format=csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert 'filename="recap-2025-05.csv"' in csv.headers["content-disposition"]
    printable = client.get("/console/supervisor/recap?month=2025-05&format=html")
    assert printable.headers["content-type"].startswith("text/html")
    # A range the other way round is explained, and the default week is shown.
    page = client.get("/console/supervisor?from=2025-05-31&to=2025-05-01")
    assert page.status_code == 200
    assert "`from` is after `to`" in page.text


def test_the_call_back_worklist_records_attempts(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from callcenter.models import Outcome

    log_in(client, new_user(session_factory, Role.operator))
    with session_factory.begin() as session:
        call_id = make_call(
            session,
            caller="081377770000",
            started_at=utcnow() - timedelta(hours=1),
            outcome=Outcome.abandoned_in_queue,
        ).id
    page = client.get("/console/callbacks")
    assert f'id="callback-{call_id}"' in page.text
    assert "ditutup penelepon saat menunggu" in page.text
    csrf = csrf_in(page.text)
    page = client.post(
        f"/console/callbacks/{call_id}/attempts", data={"csrf": csrf, "outcome": "no_answer"}
    )
    assert "Percobaan dicatat" in page.text
    row = page.text.split(f'id="callback-{call_id}"', 1)[1].split("</tr>", 1)[0]
    assert "<td>1</td>" in row  # one attempt, still open
    page = client.post(
        f"/console/callbacks/{call_id}/attempts",
        data={"csrf": csrf, "outcome": "reached", "note": "sudah aman"},
    )
    assert f'id="callback-{call_id}"' not in page.text
    # The item is closed: another attempt is refused with a message, not a JSON error.
    page = client.post(
        f"/console/callbacks/{call_id}/attempts", data={"csrf": csrf, "outcome": "reached"}
    )
    assert page.status_code == 409
    assert "not on the call-back worklist" in page.text


def test_the_board_snapshot_lists_live_calls_longest_wait_first_and_marks_flagged_callers(
    client: TestClient, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    from callcenter.models import Outcome
    from tests.builders import make_caller

    log_in(client, new_user(session_factory, Role.operator))
    now = utcnow()
    with session_factory.begin() as session:
        flagged = make_caller(
            session, number="081355550000", prank_count=settings.ivr.prank_threshold
        )
        make_call(session, outcome=Outcome.answered, started_at=now)  # ended: not on the board
        make_call(
            session,
            caller="081355550000",
            caller_key_id=flagged.id,
            outcome=Outcome.queued,
            started_at=now - timedelta(seconds=30),
        )
        make_call(
            session,
            caller="081366660000",
            outcome=Outcome.queued,
            started_at=now - timedelta(seconds=90),
        )
    rows = client.get("/console/board.json").json()
    assert [(r["caller_e164"], r["outcome"], r["flagged"]) for r in rows] == [
        ("+6281366660000", "queued", False),
        ("+6281355550000", "queued", True),
    ]


def test_a_withheld_caller_is_shown_as_such_and_masked_on_a_supervisors_board(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from callcenter.models import Outcome
    from tests.builders import make_caller

    with session_factory.begin() as session:
        key = make_caller(session, number="081377770000").id
        earlier = make_call(
            session,
            caller="081377770000",
            caller_key_id=key,
            outcome=Outcome.answered,
            private=True,
        )
        live = make_call(
            session, caller="081377770000", caller_key_id=key, outcome=Outcome.queued, private=True
        )
        plain = make_call(session, caller="081388880000", outcome=Outcome.answered)
        earlier_id, live_id, plain_id = earlier.id, live.id, plain.id

    log_in(client, new_user(session_factory, Role.operator))
    page = client.get(f"/console/calls/{live_id}").text
    assert "+6281377770000" in page  # the operator calls back: the number is kept
    assert 'id="withheld"' in page
    assert "Penelepon meminta nomornya disembunyikan" in page
    assert f'/console/calls/{earlier_id}"' in page
    assert "· 🔒 nomor disembunyikan" in page
    assert "Penelepon tidak meminta" in client.get(f"/console/calls/{plain_id}").text
    operator_rows = client.get("/console/board.json").json()
    assert [(r["caller_e164"], r["caller_id_private"]) for r in operator_rows] == [
        ("+6281377770000", True)
    ]

    client.post("/console/logout", data={"csrf": csrf_in(client.get("/console/").text)})
    log_in(client, new_user(session_factory, Role.supervisor))
    supervisor_rows = client.get("/console/board.json").json()
    assert [(r["caller_e164"], r["caller_id_raw"]) for r in supervisor_rows] == [
        ("+**********000", "*********000")
    ]
    board = client.get("/console/").text
    assert "+6281377770000" not in board
    assert "081377770000" not in board
    assert "+6281388880000" in board  # only the withheld caller is masked
