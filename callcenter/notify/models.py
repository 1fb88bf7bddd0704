"""The notification outbox, each delivery attempt, and the SMS replies read from the modem."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db import UTCDateTime, utcnow
from callcenter.models import Base, BigId, _enum


class NotificationKind(enum.StrEnum):
    assigned = "assigned"  # an agency was given an incident
    changed = "changed"  # its incident changed (e.g. another agency joined)
    reminder = "reminder"  # still not acknowledged after the agency's time
    escalation = "escalation"  # still silent: second contacts and the supervisor
    digest = "digest"  # the end-of-day list of what is still open


class Audience(enum.StrEnum):
    agency = "agency"
    second_contact = "second_contact"
    supervisor = "supervisor"


class DeliveryStatus(enum.StrEnum):
    pending = "pending"  # waiting for its next attempt (never given up)
    sent = "sent"  # one channel took it: never sent again


class Notification(Base):
    """One message to send, written in the transaction that made its reason.

    ``key`` is the idempotency key: the same for every attempt and channel, shown to the
    receiver (webhook header, e-mail Message-ID, SMS spool name), unique in the table so a
    scan that runs twice cannot queue the same reminder twice.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "status", "next_attempt_at"),
        Index("ix_notifications_incident", "incident_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(96), unique=True)
    kind: Mapped[NotificationKind] = mapped_column(_enum(NotificationKind, "notification_kind"))
    audience: Mapped[Audience] = mapped_column(_enum(Audience, "notification_audience"))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("incident_assignments.id"))
    # The facts as they were when the notification was written (rendered per channel on send).
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.pending
    )
    channel_index: Mapped[int] = mapped_column(Integer, default=0)
    channel_attempts: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A worker's claim while it sends; an expired claim (the worker died) is taken over.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_via: Mapped[str | None] = mapped_column(String(560))
    last_error: Mapped[str | None] = mapped_column(Text)

    attempt_log: Mapped[list[DeliveryAttempt]] = relationship(
        order_by="DeliveryAttempt.id", viewonly=True
    )


class DeliveryAttempt(Base):
    """One try on one channel: when, where to, and what came back."""

    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id"), index=True)
    channel: Mapped[str] = mapped_column(String(560))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ok: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(Text, default="")


class SmsReply(Base):
    """A text read from gammu-smsd's inbox (once: the file name is unique) and what it did."""

    __tablename__ = "notification_sms_replies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255), unique=True)
    sender: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("incident_assignments.id"))
    outcome: Mapped[str] = mapped_column(String(255))
