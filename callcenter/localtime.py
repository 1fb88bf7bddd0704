"""Local calendar arithmetic for reports: local days as YYYYMMDD integers, UTC bounds of days.

>>> from zoneinfo import ZoneInfo
>>> wita = ZoneInfo("Asia/Makassar")
>>> local_day(datetime(2025, 5, 31, 15, 30, tzinfo=UTC), wita)  # 23:30 WITA on 31 May
20250531
>>> local_day(datetime(2025, 5, 31, 16, 0, tzinfo=UTC), wita)
20250601
>>> utc_bounds(date(2025, 5, 1), date(2025, 5, 31), wita)[0].isoformat()
'2025-04-30T16:00:00+00:00'
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def day_key(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def key_day(key: int) -> date:
    return date(key // 10000, key // 100 % 100, key % 100)


def local_day(moment: datetime, tz: ZoneInfo) -> int:
    return day_key(moment.astimezone(tz).date())


def local_hour(moment: datetime, tz: ZoneInfo) -> int:
    local = moment.astimezone(tz)
    return day_key(local.date()) * 100 + local.hour


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which a local day begins."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def utc_bounds(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC covering the local days first..last inclusive."""
    return day_start(first, tz), day_start(last + timedelta(days=1), tz)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
