"""The listener's own table: what the database refused to store, kept with the reason."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db import UTCDateTime, utcnow
from callcenter.models import Base, BigId


class QuarantinedRow(Base):
    """A call state or a raw event that the database refused even alone (see ami/isolate.py).

    Nothing the PBX sent is dropped: what cannot be a row of ``calls`` or ``call_events`` is
    kept here as text (the event's frame, or the call's state as JSON) with the database's
    reason, for a person to look at."""

    __tablename__ = "ami_quarantine"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pbx: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # "call" | "event"
    uniqueid: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
