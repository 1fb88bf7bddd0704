"""Numbers, dates and times as people read them: Indonesian by default, in the center's zone.

>>> number(4428, "id"), number(4428, "en")
('4.428', '4,428')
>>> percent(0.8742, "id"), percent(0.8742, "en"), percent(None, "id")
('87,4%', '87.4%', '\u2013')
>>> from zoneinfo import ZoneInfo
>>> moment = datetime(2025, 10, 29, 6, 5, tzinfo=UTC)
>>> date_time(moment, ZoneInfo("Asia/Makassar"), "id")
'29 Okt 2025 14.05 WITA'
>>> date_time(moment, ZoneInfo("Asia/Makassar"), "en")
'29 Oct 2025 14:05 WITA'
>>> duration(125)
'2:05'
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

MONTHS_ID = ["Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"]
MONTHS_EN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
NONE = "\u2013"  # an en dash: no value


def number(value: int | float | None, lang: str, decimals: int = 0) -> str:
    if value is None:
        return NONE
    text = f"{value:,.{decimals}f}"
    if lang == "en":
        return text
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def percent(fraction: float | None, lang: str) -> str:
    if fraction is None:
        return NONE
    return number(fraction * 100, lang, 1) + "%"


def day(value: date, lang: str) -> str:
    months = MONTHS_EN if lang == "en" else MONTHS_ID
    return f"{value.day} {months[value.month - 1]} {value.year}"


def time_of_day(moment: datetime | None, tz: ZoneInfo, lang: str) -> str:
    if moment is None:
        return NONE
    local = moment.astimezone(tz)
    separator = ":" if lang == "en" else "."
    return f"{local:%H}{separator}{local:%M} {local.tzname()}"


def date_time(moment: datetime | None, tz: ZoneInfo, lang: str) -> str:
    if moment is None:
        return NONE
    return f"{day(moment.astimezone(tz).date(), lang)} {time_of_day(moment, tz, lang)}"


def duration(seconds: int | float | None) -> str:
    if seconds is None:
        return NONE
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def iso(moment: datetime | None) -> str:
    """For the page's scripts (wait counters): UTC, ISO 8601."""
    return "" if moment is None else moment.astimezone(UTC).isoformat()
