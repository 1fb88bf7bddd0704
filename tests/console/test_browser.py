"""End to end in a real headless Chromium: a recorded call replayed through the real AMI
listener moves on the board, pops on its operator's screen, is tagged, gets an incident with
two agencies, is followed up, and shows in the supervisor's figures.

Screenshots of each main view go to test-artifacts/console/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import cast

import pytest
from fastapi import FastAPI
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.ami.fake_server import Chunk, FakeAsterisk
from callcenter.ami.runtime import AmiRuntime
from callcenter.app import create_app
from callcenter.db import utcnow
from callcenter.demo import feed
from callcenter.incidents import agencies
from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Assignment, Incident
from callcenter.live import InProcessBus, make_live_bus
from callcenter.models import Call, Classification, Role
from callcenter.settings import Settings
from tests.builders import PASSWORD, make_call, make_caller, make_user
from tests.console.browser import LiveServer, chromium, live, log_in, shot, text, wait

CALLER = "081234567890"  # the caller of the recording 20-pjsip-answered
MEMBER = "Operator Maria"  # the queue member who answers it
PHONE = "PJSIP/op2"  # and the phone it rings


@pytest.fixture
def bus(settings: Settings) -> Iterator[InProcessBus]:
    bus = make_live_bus(settings.resolved_database_url)
    yield bus
    bus.close()


@pytest.fixture
def server(settings: Settings, bus: InProcessBus) -> Iterator[LiveServer]:
    def make_app() -> FastAPI:
        app = create_app(settings)
        app.state.live_bus = bus  # the listener's bus, as `callcenter serve` shares it
        return app

    server = LiveServer(make_app)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def browsers() -> Iterator[list[WebDriver]]:
    opened: list[WebDriver] = []
    yield opened
    for driver in opened:
        driver.quit()


def browser(opened: list[WebDriver]) -> WebDriver:
    driver = chromium()
    opened.append(driver)
    return driver


def seed(factory: sessionmaker[Session], settings: Settings) -> dict[str, str]:
    with factory.begin() as session:
        agencies.seed(session, settings.agencies)
        names = {
            # Linked by its phone alone: the pop finds it by the interface that rang.
            "operator": make_user(
                session, role=Role.operator, queue_member_interface=PHONE
            ).username,
            "supervisor": make_user(session, role=Role.supervisor).username,
            "admin": make_user(session, role=Role.admin).username,
        }
        # The caller rang before, and that call was tagged prank: the pop shows it.
        caller = make_caller(session, number=CALLER, call_count=1, prank_count=1)
        make_call(
            session,
            caller=CALLER,
            caller_key_id=caller.id,
            started_at=utcnow() - timedelta(days=2),
            classification=Classification.prank,
        )
    return names


def state_seen(driver: WebDriver, state: str) -> bool:
    return bool(driver.find_elements(By.CSS_SELECTOR, f"#queue-body td.state-{state}"))


def test_a_replayed_call_from_the_board_to_the_supervisors_figures(
    settings: Settings,
    session_factory: sessionmaker[Session],
    server: LiveServer,
    bus: InProcessBus,
    browsers: list[WebDriver],
) -> None:
    users = seed(session_factory, settings)
    base = server.url

    supervisor = browser(browsers)
    log_in(supervisor, base, users["supervisor"], PASSWORD)
    assert supervisor.current_url.endswith("/console/supervisor")
    calls_before = int(supervisor.find_element(By.ID, "today-calls").text.replace(".", ""))
    emergencies_before = int(supervisor.find_element(By.ID, "today-emergencies").text)
    supervisor.get(f"{base}/console/")
    live(supervisor)

    operator = browser(browsers)
    log_in(operator, base, users["operator"], PASSWORD)
    live(operator)
    # Indonesian by default.
    assert "Antrean langsung" in text(operator)
    shot(operator, "01-board-empty")

    recording = feed.Loop([feed.Trace.load(feed.TRACES / "20-pjsip-answered")], rounds=1, speed=2)
    ami = settings.ami
    with FakeAsterisk(
        [cast(list[Chunk], recording)],
        username=ami.username,
        secret=ami.secret.get_secret_value(),
        realtime=True,
        close_at_end=False,
    ) as pbx:
        runtime = AmiRuntime(settings, bus=bus, port=pbx.port)
        runtime.start()
        try:
            # The board moves: IVR -> in the queue (wait counting up) -> connected.
            wait(supervisor, 30).until(lambda d: state_seen(d, "in_ivr"))
            assert CALLER.replace("0", "+62", 1) in text(supervisor)
            # In the queue: this recording's operator phone rings as the caller joins.
            wait(supervisor, 30).until(
                lambda d: state_seen(d, "queued") or state_seen(d, "ringing")
            )
            shot(supervisor, "02-board-waiting")
            wait(supervisor, 30).until(lambda d: state_seen(d, "connected"))
            assert MEMBER in text(supervisor)
            shot(supervisor, "03-board-connected")

            # The operator's screen pops with the call and the caller's history.
            wait(operator, 30).until(lambda d: re.search(r"/console/calls/\d+$", d.current_url))
            call_id = int(operator.current_url.rsplit("/", 1)[1])
            page = text(operator)
            assert "+6281234567890" in page
            assert "Riwayat penelepon" in page
            history = operator.find_element(By.ID, "earlier-calls").text
            assert "iseng" in history  # the earlier call's tag
            shot(operator, "04-screen-pop")

            # One key tags it: D = darurat.
            operator.find_element(By.TAG_NAME, "body").send_keys("d")
            wait(operator).until(lambda d: "Klasifikasi disimpan" in text(d))
            with session_factory() as session:
                call = session.get(Call, call_id)
                assert call is not None
                assert call.classification is Classification.emergency

            # The incident form: category, district, village, two agencies and a primary.
            Select(operator.find_element(By.ID, "category")).select_by_value("fire")
            Select(operator.find_element(By.ID, "district")).select_by_value("Kota Kefamenanu")
            Select(operator.find_element(By.ID, "village")).select_by_value("Benpasi")
            operator.find_element(By.ID, "location_text").send_keys("Dekat pasar")
            operator.find_element(By.ID, "summary").send_keys("Rumah terbakar")
            operator.find_element(By.ID, "agency-damkar_ttu").click()
            operator.find_element(By.ID, "primary-polres_ttu").click()  # also assigns it
            shot(operator, "05-incident-form")
            operator.find_element(By.ID, "save-incident").click()
            wait(operator).until(lambda d: "Kejadian disimpan" in text(d))
            rows = operator.find_elements(By.CSS_SELECTOR, "#assignments tbody tr")
            assert len(rows) == 2
            primary_row = operator.find_element(By.ID, "assignment-polres_ttu")
            assert "Instansi utama" in primary_row.text

            # Follow-up: the primary agency was told.
            primary_row.find_element(By.CSS_SELECTOR, 'button[data-step="dispatched"]').click()
            wait(operator).until(lambda d: "Tindak lanjut disimpan" in text(d))
            assert "diteruskan" in operator.find_element(By.ID, "assignment-polres_ttu").text
            shot(operator, "06-follow-up")
            with session_factory() as session:
                incident = session.scalars(
                    select(Incident).where(Incident.call_id == call_id)
                ).one()
                steps = {
                    a.agency.code: (a.is_primary, a.status)
                    for a in session.scalars(
                        select(Assignment).where(Assignment.incident_id == incident.id)
                    )
                }
            assert steps == {
                "polres_ttu": (True, FollowUp.dispatched),
                "damkar_ttu": (False, FollowUp.pending),
            }
        finally:
            runtime.listener.stop()
            runtime.engine.dispose()

    # The supervisor's figures and charts changed.
    supervisor.get(f"{base}/console/supervisor")
    calls_after = int(supervisor.find_element(By.ID, "today-calls").text.replace(".", ""))
    assert calls_after == calls_before + 1
    assert int(supervisor.find_element(By.ID, "today-emergencies").text) == emergencies_before + 1
    assert supervisor.find_elements(By.CSS_SELECTOR, "#chart-mix rect.seg-emergency")
    assert supervisor.find_elements(By.CSS_SELECTOR, "#chart-hours rect.bar[height]")
    # The primary agency's follow-up: 1 emergency, 0 pending, 1 dispatched.
    assert (
        "Polres Timor Tengah Utara 1 0 1 0 0 0" in supervisor.find_element(By.ID, "by-agency").text
    )
    shot(supervisor, "07-supervisor")

    # English is one click away, and back.
    operator.find_element(By.ID, "lang-switch").click()
    wait(operator).until(lambda d: "Caller history" in text(d))
    assert "Riwayat penelepon" not in text(operator)
    shot(operator, "08-call-english")
    operator.find_element(By.ID, "lang-switch").click()
    wait(operator).until(lambda d: "Riwayat penelepon" in text(d))

    # An operator cannot open the supervisor or admin pages: the server refuses.
    for path in ("/console/supervisor", "/console/admin"):
        operator.get(f"{base}{path}")
        assert "Halaman ini tidak untuk peran Anda" in text(operator)
    assert not operator.find_elements(By.CSS_SELECTOR, 'nav a[href="/console/admin"]')
    shot(operator, "09-operator-refused")

    # A form posted without its CSRF token is refused, and the call keeps its tag.
    operator.get(f"{base}/console/calls/{call_id}")
    operator.execute_script(
        "document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())"
    )
    operator.find_element(By.ID, "tag-prank").click()
    wait(operator).until(lambda d: "Formulir ini kedaluwarsa atau tidak sah" in text(d))
    with session_factory() as session:
        call = session.get(Call, call_id)
        assert call is not None
        assert call.classification is Classification.emergency

    admin = browser(browsers)
    log_in(admin, base, users["admin"], PASSWORD)
    assert "polres_ttu" in admin.find_element(By.ID, "agencies").text
    shot(admin, "10-admin")


def test_the_board_reconnects_by_itself_after_a_backend_restart(
    settings: Settings,
    session_factory: sessionmaker[Session],
    server: LiveServer,
    bus: InProcessBus,
    browsers: list[WebDriver],
) -> None:
    users = seed(session_factory, settings)
    operator = browser(browsers)
    log_in(operator, server.url, users["operator"], PASSWORD)
    live(operator)

    server.stop()
    wait(operator).until(lambda d: d.find_element(By.ID, "queue").get_attribute("data-live") == "0")
    assert "Menyambung ulang" in operator.find_element(By.ID, "live-status").text
    shot(operator, "11-board-reconnecting")
    server.start()
    live(operator)  # with no reload of the page

    bus.publish(
        [
            {
                "type": "call",
                "pbx": "test-pbx",
                "uniqueid": "1800000000.7",
                "linkedid": "1800000000.7",
                "outcome": "queued",
                "caller_id_raw": "081299990000",
                "caller_e164": "+6281299990000",
                "operator": None,
                "started_at": utcnow().isoformat(),
                "queued_at": utcnow().isoformat(),
            }
        ]
    )
    wait(operator).until(lambda d: "+6281299990000" in d.find_element(By.ID, "queue").text)


def test_a_page_left_for_another_closes_its_live_stream(
    settings: Settings,
    session_factory: sessionmaker[Session],
    server: LiveServer,
    bus: InProcessBus,
    browsers: list[WebDriver],
) -> None:
    """Each page left closes its stream, and one brought back from the back/forward cache opens
    it again. (Pages left in that cache once held their connections: after six, the operator's
    next page or form waited about a minute for one, the replayed call's test above with it.)"""
    users = seed(session_factory, settings)
    operator = browser(browsers)
    log_in(operator, server.url, users["operator"], PASSWORD)
    live(operator)
    for page in range(7):  # seven entries in the history (the same URL would replace one)
        operator.get(f"{server.url}/console/?page={page}")
        live(operator)
        # Only this page's stream: the one left behind was closed.
        wait(operator).until(lambda _: bus.open_streams() == 1)
    # And a page brought back from that cache streams again.
    operator.back()
    assert operator.current_url.endswith("?page=5")
    live(operator)
    wait(operator).until(lambda _: bus.open_streams() == 1)


def test_log_in_and_tag_with_the_keyboard_alone(
    settings: Settings,
    session_factory: sessionmaker[Session],
    server: LiveServer,
    browsers: list[WebDriver],
) -> None:
    users = seed(session_factory, settings)
    with session_factory.begin() as session:
        call_id = make_call(session, started_at=utcnow()).id
    operator = browser(browsers)
    operator.get(f"{server.url}/console/login")
    shot(operator, "00-login")
    active = operator.switch_to.active_element
    assert active.get_attribute("id") == "username"  # focus starts in the form
    active.send_keys(users["operator"], Keys.TAB)
    operator.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER)
    wait(operator).until(lambda d: d.current_url.endswith("/console/"))

    operator.get(f"{server.url}/console/calls/{call_id}")
    operator.find_element(By.TAG_NAME, "body").send_keys("b")  # B = bukan darurat
    wait(operator).until(lambda d: "Klasifikasi disimpan" in text(d))
    with session_factory() as session:
        call = session.get(Call, call_id)
        assert call is not None
        assert call.classification is Classification.non_emergency
