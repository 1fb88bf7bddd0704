"""What agencies read, in Indonesian (GLOSSARY-id.md): SMS, e-mail and webhook JSON.

Pure: a notification's stored facts in, text out. SMS text stays GSM-7 (see gsm7.py).

>>> facts = {"incident_id": 12, "category": "fire", "district": "Kota Kefamenanu",
...          "village": "Benpasi", "location_text": "belakang pasar", "summary": "",
...          "caller_number": "+6281234567890", "assigned_at": "2026-12-01T06:05:00+00:00",
...          "agency_name": "Damkar TTU"}
>>> print(sms_text("assigned", facts, link="http://x/a/T", tz=WITA))
112 TTU: aduan darurat KEBAKARAN, kejadian 12, 14.05 WITA. Lokasi: Kec. Kota Kefamenanu, \
Desa Benpasi, belakang pasar. Penelepon: +6281234567890. Balas OK 12 = diterima, \
SELESAI 12 = selesai ditangani, atau buka http://x/a/T
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

WITA = ZoneInfo("Asia/Makassar")
CENTER = "Call Center TTU Siaga 112"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")

CATEGORY_NAMES = {
    "fire": "kebakaran",
    "medical": "medis",
    "crime": "kriminalitas",
    "traffic_accident": "kecelakaan lalu lintas",
    "disaster": "bencana",
    "search_and_rescue": "pencarian dan pertolongan",
    "electricity": "gangguan listrik",
    "other": "lainnya",
}
STATUS_NAMES = {
    "pending": "belum diteruskan",
    "dispatched": "diteruskan",
    "acknowledged": "diterima",
    "resolved": "selesai ditangani",
    "not_followed_up": "tidak ditindaklanjuti",
}
_HEADLINE = {
    "assigned": "aduan darurat",
    "changed": "PERUBAHAN",
    "reminder": "PENGINGAT, belum diterima:",
    "escalation": "ESKALASI, belum diterima:",
}


def category_name(code: str) -> str:
    return CATEGORY_NAMES.get(code, code.replace("_", " "))


def local_time(iso: str, tz: ZoneInfo) -> str:
    """``14.05 WITA`` (the zone's abbreviation, as the center says it)."""
    moment = datetime.fromisoformat(iso).astimezone(tz)
    return f"{moment:%H.%M} {moment.tzname()}"


def local_date(moment: datetime, tz: ZoneInfo) -> str:
    """``29 Okt 2025``."""
    local = moment.astimezone(tz)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}"


def place(facts: dict[str, Any]) -> str:
    parts = []
    if facts.get("district"):
        parts.append(f"Kec. {facts['district']}")
    if facts.get("village"):
        parts.append(f"Desa {facts['village']}")
    if facts.get("location_text"):
        parts.append(str(facts["location_text"]).strip())
    return ", ".join(parts) or "belum diketahui"


def caller(facts: dict[str, Any]) -> str | None:
    """The caller's number where the agency may see it; None when it is not to be given."""
    if facts.get("caller_hidden"):
        return None
    return facts.get("caller_number") or "nomor disembunyikan"


def sms_text(kind: str, facts: dict[str, Any], *, link: str | None, tz: ZoneInfo) -> str:
    """One SMS text (gsm7.split cuts it into parts when it is longer than 160)."""
    if kind == "digest":
        return digest_text(facts, tz=tz)
    n = facts["incident_id"]
    head = _HEADLINE.get(kind, kind)
    category = category_name(facts["category"]).upper()
    when = local_time(facts["assigned_at"], tz)
    text = f"112 TTU: {head} {category}, kejadian {n}, {when}."
    if kind == "changed" and facts.get("change"):
        text += f" {facts['change']}."
    if kind == "escalation" and facts.get("audience") != "agency":
        text += f" Instansi: {facts['agency_name']}."
    text += f" Lokasi: {place(facts)}."
    if facts.get("summary"):
        text += f" {str(facts['summary']).strip()}."
    number = caller(facts)
    if number:
        text += f" Penelepon: {number}."
    if facts.get("audience") == "supervisor":
        return text
    text += f" Balas OK {n} = diterima, SELESAI {n} = selesai ditangani"
    return f"{text}, atau buka {link}" if link else f"{text}."


def digest_text(facts: dict[str, Any], *, tz: ZoneInfo) -> str:
    day = local_date(datetime.fromisoformat(facts["as_of"]), tz)
    items = facts["open"]
    text = f"112 TTU: rekap harian {day}. {len(items)} penugasan belum selesai ditangani:"
    for item in items:
        who = f"{item['agency_name']}, " if facts.get("audience") == "supervisor" else ""
        status = STATUS_NAMES.get(item["status"], item["status"])
        text += (
            f" kejadian {item['incident_id']} ({who}{category_name(item['category'])}, "
            f"{status} sejak {local_time(item['assigned_at'], tz)});"
        )
    return text.rstrip(";") + "."


def email_subject(kind: str, facts: dict[str, Any], *, tz: ZoneInfo) -> str:
    if kind == "digest":
        day = local_date(datetime.fromisoformat(facts["as_of"]), tz)
        return f"[112] Rekap harian {day}: {len(facts['open'])} penugasan belum selesai ditangani"
    head = {"assigned": "Penugasan", "changed": "Perubahan", "reminder": "Pengingat"}.get(
        kind, "Eskalasi"
    )
    return (
        f"[112] {head} kejadian {facts['incident_id']}: "
        f"{category_name(facts['category'])}, {place(facts)}"
    )


def email_body(kind: str, facts: dict[str, Any], *, link: str | None, tz: ZoneInfo) -> str:
    if kind == "digest":
        return f"{digest_text(facts, tz=tz)}\n\n-- \n{CENTER}\n"
    lines = [sms_text(kind, facts, link=None, tz=tz).removeprefix("112 TTU: "), ""]
    if facts.get("latitude") is not None:
        lines.append(f"Koordinat: {facts['latitude']}, {facts['longitude']}")
    if facts.get("other_agencies"):
        lines.append(f"Instansi lain: {', '.join(facts['other_agencies'])}")
    if link and facts.get("audience") != "supervisor":
        lines += ["", "Konfirmasi penugasan ini (tanpa akun):", link]
    lines += ["", "-- ", CENTER, ""]
    return "\n".join(lines)


def webhook_document(
    kind: str, key: str, facts: dict[str, Any], *, link: str | None, tz: ZoneInfo
) -> dict[str, Any]:
    """The JSON a webhook receives: the facts, the ready text, and how to acknowledge."""
    return {
        "id": key,
        "type": kind,
        "text": sms_text(kind, facts, link=link, tz=tz),
        "ack_url": link,
        "data": facts,
    }
