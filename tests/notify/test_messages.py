"""What agencies read: Indonesian text, SMS in GSM-7 within 160, the caller's number as allowed,
and a change to the incident told to the agencies already on it; the HTTP SMS gateway."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.incidents import service
from callcenter.models import Role
from callcenter.notify import gsm7, messages
from callcenter.notify.config import Channel, SmsHttpSettings
from callcenter.notify.models import Notification, NotificationKind
from callcenter.notify.worker import Worker, render
from callcenter.settings import Settings
from tests.builders import make_user
from tests.notify.conftest import Clock, HttpReceiver, MakeIncident, contacts, with_notify

FACTS: dict[str, Any] = {
    "incident_id": 4428,
    "category": "traffic_accident",
    "district": "Biboki Selatan",
    "village": "Hauteas Barat",
    "location_text": "jalan Trans Timor km 12, dekat jembatan {lama}",
    "summary": "Dua sepeda motor bertabrakan; satu korban tidak sadar, perlu ambulans segera",
    "caller_number": "+6281234567890",
    "assigned_at": "2026-12-01T06:05:00+00:00",
    "agency_name": "Polres TTU",
}


def test_a_long_sms_splits_into_gsm7_parts_of_160_septets_words_whole() -> None:
    text = messages.sms_text("assigned", FACTS, link="http://112.test/ack/9.x.y", tz=messages.WITA)
    assert gsm7.septets(text) > 160
    parts = gsm7.split(text)
    assert len(parts) == 3
    assert all(gsm7.septets(p) <= 160 for p in parts)
    assert [p[:4] for p in parts] == ["1/3 ", "2/3 ", "3/3 "]
    # "{" and "}" take two septets each; nothing is lost or cut inside a word.
    assert " ".join(p[4:] for p in parts).split() == text.split()
    assert "14.05 WITA" in parts[0]
    assert "KECELAKAAN LALU LINTAS" in parts[0]


def test_a_short_sms_is_one_message_and_non_gsm_characters_are_replaced() -> None:
    facts = FACTS | {
        "category": "fire",
        "village": None,
        "location_text": None,
        "summary": "\u201cB\u201d \u2013 ok",
        "caller_hidden": True,
    }
    text = messages.sms_text("assigned", facts, link=None, tz=messages.WITA)
    [part] = gsm7.split(text)
    assert gsm7.septets(part) <= 160
    assert all(c in gsm7.BASIC or c in gsm7.EXTENSION for c in part)
    assert '"B" - ok' in part
    assert part.endswith("SELESAI 4428 = selesai ditangani.")


def test_messages_use_the_glossary_terms() -> None:
    text = messages.sms_text("reminder", FACTS, link=None, tz=messages.WITA)
    assert "kejadian 4428" in text
    assert "PENGINGAT, belum diterima" in text
    assert "selesai ditangani" in text
    withheld = messages.sms_text(
        "assigned", FACTS | {"caller_number": None}, link=None, tz=messages.WITA
    )
    assert "Penelepon: nomor disembunyikan" in withheld
    assert (
        messages.local_date(datetime(2025, 10, 29, 3, tzinfo=UTC), messages.WITA) == "29 Okt 2025"
    )


def test_an_agency_not_allowed_the_callers_number_does_not_get_it(
    session_factory: sessionmaker[Session],
    settings: Settings,
    make_incident: MakeIncident,
) -> None:
    settings = with_notify(settings, agencies={"pln_ulp_kefa": contacts(share_caller_number=False)})
    make_incident("polres_ttu", "pln_ulp_kefa", category="electricity")
    with session_factory() as session:
        rows = session.scalars(select(Notification).order_by(Notification.id)).all()
        police, pln = (render(n, n.payload["agency_code"], settings) for n in rows)
    assert "+6281234567890" in police.sms_parts[0]
    assert "+6281234567890" not in " ".join(pln.sms_parts)
    assert "+6281234567890" not in pln.body
    assert "Penelepon" not in pln.body


def test_an_agency_joining_later_is_told_and_the_others_hear_of_the_change(
    session_factory: sessionmaker[Session],
    settings: Settings,
    make_incident: MakeIncident,
) -> None:
    incident_id = make_incident("damkar_ttu", "rsud_kefa")
    with session_factory.begin() as session:
        user = make_user(session, role=Role.operator)
        service.add_assignment(
            session,
            user=user,
            incident_id=incident_id,
            request=service.AgencyRequest("bpbd_ttu"),
        )
    with session_factory() as session:
        rows = session.scalars(select(Notification).order_by(Notification.id)).all()
    kinds = [(n.kind, n.payload["agency_code"]) for n in rows]
    assert kinds == [
        (NotificationKind.assigned, "damkar_ttu"),
        (NotificationKind.assigned, "rsud_kefa"),
        (NotificationKind.assigned, "bpbd_ttu"),
        (NotificationKind.changed, "damkar_ttu"),
        (NotificationKind.changed, "rsud_kefa"),
    ]
    assert rows[3].payload["change"] == "BPBD TTU ikut ditugaskan"
    assert "BPBD TTU" in rows[3].payload["other_agencies"]
    assert len({n.key for n in rows}) == 5
    text = messages.sms_text("changed", rows[3].payload, link=None, tz=messages.WITA)
    assert text.startswith(f"112 TTU: PERUBAHAN KEBAKARAN, kejadian {incident_id}")


def test_sms_through_an_http_gateway_one_request_per_part_with_its_token(
    session_factory: sessionmaker[Session],
    settings: Settings,
    make_incident: MakeIncident,
    receiver: HttpReceiver,
    clock: Clock,
) -> None:
    settings = with_notify(
        settings,
        sms_http=SmsHttpSettings(url=receiver.url, token="gateway-token-xyz"),
        agencies={"damkar_ttu": contacts(Channel(kind="sms_http", to="081100000001"))},
    )
    make_incident(
        "damkar_ttu", summary="Api besar di gudang kopra, angin kencang ke arah permukiman"
    )
    Worker(session_factory, settings, clock=clock).run_once()
    bodies = [r.json() for r in receiver.received]
    assert len(bodies) >= 2
    assert {b["to"] for b in bodies} == {"081100000001"}
    assert all(gsm7.septets(b["text"]) <= 160 for b in bodies)
    assert [b["id"].rsplit("-", 1)[1] for b in bodies] == [
        str(i) for i in range(1, len(bodies) + 1)
    ]
    assert {r.headers["Authorization"] for r in receiver.received} == {"Bearer gateway-token-xyz"}


def test_a_channel_with_a_bad_address_is_refused_in_config() -> None:
    with pytest.raises(ValidationError, match="phone number"):
        Channel(kind="sms_gammu", to="polres")
    with pytest.raises(ValidationError, match="secret_env"):
        Channel(kind="webhook", to="https://x.test/hook")
    with pytest.raises(ValidationError, match="e-mail"):
        Channel(kind="email", to="a@b.test, c@d.test")
