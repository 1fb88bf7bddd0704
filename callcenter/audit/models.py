"""The audit log: one row per change or personal-data access; never updated, never deleted.

Migration 0013 adds database triggers that refuse UPDATE and DELETE on it (both databases).
Classification and follow-up changes keep their own history tables (written on the hot path);
the audit API reads those beside this one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db import UTCDateTime, utcnow
from callcenter.models import Base, BigId


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_entity", "entity", "entity_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The user who acted (None: a command run on the server, named in actor_name).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(128), default="")
    # e.g. user.create, user.update, incident.update, caller.history.read, caller.erase
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    # The entity's id; for a caller, the pseudonym of the number (never the number itself).
    entity_key: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
