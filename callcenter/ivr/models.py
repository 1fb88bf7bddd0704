"""What the IVR did on each call, keyed like the call itself: (pbx, caller channel Uniqueid).

A table of its own because the IVR often runs before the AMI listener has written the call row;
the API joins ivr_runs to calls on (pbx, uniqueid).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db import UTCDateTime
from callcenter.models import Base, BigId


class IvrRun(Base):
    __tablename__ = "ivr_runs"
    __table_args__ = (
        UniqueConstraint("pbx", "uniqueid", name="uq_ivr_runs_pbx_uniqueid"),
        Index("ix_ivr_runs_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pbx: Mapped[str] = mapped_column(String(64))
    uniqueid: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(128), default="")
    caller_id_raw: Mapped[str] = mapped_column(String(128), default="")
    caller_e164: Mapped[str | None] = mapped_column(String(32), index=True)
    # agi_callingpres (e.g. 32: presentation prohibited, user number not screened)
    calling_pres: Mapped[int | None] = mapped_column(Integer)
    # none | prank | withheld | unchecked (callcenter.ivr.flow.CallerFlag); NULL: hung up first
    flag: Mapped[str | None] = mapped_column(String(16))
    priority: Mapped[int | None] = mapped_column(Integer)
    warning_played: Mapped[bool] = mapped_column(Boolean, default=False)
    # found | withheld | miss; lookup_ms: from the session's start to the answer
    lookup_status: Mapped[str | None] = mapped_column(String(16))
    lookup_ms: Mapped[int | None] = mapped_column(Integer)
    prompts_failed: Mapped[int] = mapped_column(Integer, default=0)
    # completed | caller_hung_up | agi_error | skipped_busy (callcenter.ivr.flow.Outcome)
    outcome: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
