"""Call-back attempts. The worklist itself is derived from the calls table by a query."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db import UTCDateTime, utcnow
from callcenter.models import Base, BigId, _enum


class CallbackOutcome(enum.StrEnum):
    reached = "reached"
    no_answer = "no_answer"
    not_needed = "not_needed"

    @property
    def closes(self) -> bool:
        """Reached or not needed closes the item; no answer leaves it for another try."""
        return self is not CallbackOutcome.no_answer


class CallbackAttempt(Base):
    __tablename__ = "callback_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    outcome: Mapped[CallbackOutcome] = mapped_column(_enum(CallbackOutcome, "callback_outcome"))
    note: Mapped[str | None] = mapped_column(Text)
    attempted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
