"""The store's tables. The schema itself comes only from migrations/ (Alembic)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from callcenter.db import UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER on SQLite (so it stays an autoincrementing rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings with a CHECK constraint: the same on SQLite and PostgreSQL.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Role(enum.StrEnum):
    operator = "operator"
    supervisor = "supervisor"
    admin = "admin"

    @property
    def rank(self) -> int:
        return [Role.operator, Role.supervisor, Role.admin].index(self)


class Outcome(enum.StrEnum):
    """Telephony outcome, derived from AMI alone."""

    in_ivr = "in_ivr"
    queued = "queued"
    ringing = "ringing"
    connected = "connected"
    answered = "answered"
    abandoned_in_ivr = "abandoned_in_ivr"
    abandoned_in_queue = "abandoned_in_queue"
    unanswered = "unanswered"
    failed = "failed"

    @property
    def is_final(self) -> bool:
        return self in FINAL_OUTCOMES


FINAL_OUTCOMES = frozenset(
    {
        Outcome.answered,
        Outcome.abandoned_in_ivr,
        Outcome.abandoned_in_queue,
        Outcome.unanswered,
        Outcome.failed,
    }
)


class Classification(enum.StrEnum):
    """What the operator says the call was."""

    emergency = "emergency"
    prank = "prank"
    non_emergency = "non_emergency"


class CallerIdStatus(enum.StrEnum):
    valid = "valid"  # normalised to E.164
    withheld = "withheld"  # anonymous, unknown, empty
    short_code = "short_code"  # e.g. 112 itself: a real number, not E.164
    invalid = "invalid"  # kept as received, never guessed


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The queue member name (e.g. "Operator Andi") that AMI reports for this operator.
    queue_member_name: Mapped[str | None] = mapped_column(String(128), index=True)
    # Its phone as a queue member interface (e.g. "PJSIP/op1"): the console's screen pop.
    queue_member_interface: Mapped[str | None] = mapped_column(String(128))
    # No longer used: failed logins are counted in login_failures (migration 0009).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # In every token this user gets; raised to revoke them all (log-out, role change, ...).
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LoginFailure(Base):
    """Failed logins for one username, whether a user of that name exists or not."""

    __tablename__ = "login_failures"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Caller(Base):
    """One calling number (or one raw value, when it is not a number), with counts."""

    __tablename__ = "callers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # E.164 when valid, else "<status>:<raw>": one row per distinct caller identity.
    number_key: Mapped[str] = mapped_column(String(160), unique=True)
    e164: Mapped[str | None] = mapped_column(String(32), index=True)
    raw_last: Mapped[str] = mapped_column(String(128), default="")
    status: Mapped[CallerIdStatus] = mapped_column(_enum(CallerIdStatus, "caller_id_status"))
    line_type: Mapped[str | None] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(128))
    call_count: Mapped[int] = mapped_column(Integer, default=0)
    emergency_count: Mapped[int] = mapped_column(Integer, default=0)
    prank_count: Mapped[int] = mapped_column(Integer, default=0)
    non_emergency_count: Mapped[int] = mapped_column(Integer, default=0)
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Call(Base):
    """One 112 call: keyed by (pbx, caller channel Uniqueid), grouped by Linkedid."""

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("pbx", "uniqueid", name="uq_calls_pbx_uniqueid"),
        Index("ix_calls_started_at", "started_at"),
        Index("ix_calls_caller_started", "caller_key_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pbx: Mapped[str] = mapped_column(String(64))
    # 150: Asterisk's AST_MAX_UNIQUEID, the longest it sends (migration 0008).
    uniqueid: Mapped[str] = mapped_column(String(150))
    linkedid: Mapped[str] = mapped_column(String(150), index=True)
    channel: Mapped[str] = mapped_column(String(128), default="")

    # Caller ID as received, its normalisation, and the caller row it belongs to.
    caller_id_raw: Mapped[str] = mapped_column(String(128), default="")
    # NULL when the network sent no name (AMI's "<unknown>"; the raw value stays in the events).
    caller_id_name: Mapped[str | None] = mapped_column(String(128))
    caller_e164: Mapped[str | None] = mapped_column(String(32), index=True)
    caller_id_status: Mapped[CallerIdStatus] = mapped_column(
        _enum(CallerIdStatus, "caller_id_status"), default=CallerIdStatus.withheld
    )
    # The caller asked for privacy (presentation restricted, e.g. SIP "Privacy: id"): the number
    # is kept (a 112 line calls back) but lists mask it for roles that do not need it.
    caller_id_private: Mapped[bool] = mapped_column(Boolean, default=False)
    caller_key_id: Mapped[int | None] = mapped_column(ForeignKey("callers.id"))

    # Telephony (written by the AMI listener only).
    outcome: Mapped[Outcome] = mapped_column(_enum(Outcome, "outcome"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queue: Mapped[str | None] = mapped_column(String(64))
    queue_position: Mapped[int | None] = mapped_column(Integer)
    operator: Mapped[str | None] = mapped_column(String(128), index=True)
    operator_interface: Mapped[str | None] = mapped_column(String(128))
    # The caller's wait from the first queue join to the answer, over every queue round.
    wait_seconds: Mapped[int | None] = mapped_column(Integer)
    # From the call reaching the PBX to an operator answering, the IVR included (NENA's).
    answer_seconds: Mapped[int | None] = mapped_column(Integer)
    talk_seconds: Mapped[int | None] = mapped_column(Integer)
    ended_by: Mapped[str | None] = mapped_column(String(16))  # caller | operator | system
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    hangup_cause_txt: Mapped[str | None] = mapped_column(String(64))
    transferred_to: Mapped[str | None] = mapped_column(String(128))
    # Queue rounds that timed out (the dialplan's Emergency112Overflow UserEvent).
    overflows: Mapped[int] = mapped_column(Integer, default=0)
    transferred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The listener lost sight of the call (AMI gap); closed by reconciliation.
    gap: Mapped[bool] = mapped_column(Boolean, default=False)
    gap_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The state machine's own snapshot, so a restarted listener resumes the call.
    telephony_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    # Classification (written by operators only), kept apart from the telephony outcome.
    classification: Mapped[Classification | None] = mapped_column(
        _enum(Classification, "classification"), index=True
    )
    classification_reason: Mapped[str | None] = mapped_column(String(64))
    classification_note: Mapped[str | None] = mapped_column(Text)
    classified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    classified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    version: Mapped[int] = mapped_column(Integer, default=1)
    # Bumped by the AMI listener's every update (which leaves version alone, see ami.store), so
    # the statistics rollups see every change (stats.rollup's fingerprint).
    changes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    events: Mapped[list[CallEvent]] = relationship(
        back_populates="call",
        order_by="CallEvent.id",
        viewonly=True,
        primaryjoin="Call.id == foreign(CallEvent.call_id)",
    )
    history: Mapped[list[ClassificationChange]] = relationship(
        back_populates="call", order_by="ClassificationChange.id", viewonly=True
    )


class CallEvent(Base):
    """A raw AMI event, append-only: the audit trail a call row is derived from."""

    __tablename__ = "call_events"
    # Each index is paid on every one of ~20,000 inserts a second at peak: a call's events are
    # read by call_id, and no query reads them by (pbx, uniqueid), so that index was dropped.
    # call_id is not a foreign key for the same reason (migration 0006 says why that is safe).
    __table_args__ = (UniqueConstraint("pbx", "dedup_key", name="uq_call_events_pbx_dedup_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pbx: Mapped[str] = mapped_column(String(64))
    # The event's Uniqueid and a hash of the frame without its Timestamp (Frame.dedup_key,
    # numbered when repeated: ami/identity.py): the same event delivered twice, with or
    # without timestamps, is stored once, and the keys grow with time.
    dedup_key: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[int | None] = mapped_column(BigId, index=True)
    uniqueid: Mapped[str | None] = mapped_column(String(150))
    linkedid: Mapped[str | None] = mapped_column(String(150))
    name: Mapped[str] = mapped_column(String(64))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The frame as read, "Key: Value" lines joined by CRLF (UTF-8; a line that was not UTF-8
    # on the wire is read as Latin-1). Text, not parsed JSON: the listener never splits an
    # event into its headers just to store it.
    raw: Mapped[str] = mapped_column(Text)

    call: Mapped[Call | None] = relationship(
        back_populates="events", primaryjoin="foreign(CallEvent.call_id) == Call.id"
    )


class ClassificationChange(Base):
    """Every classification change: who, when, from what, to what, why."""

    __tablename__ = "classification_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    changed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    old_classification: Mapped[Classification | None] = mapped_column(
        _enum(Classification, "classification")
    )
    new_classification: Mapped[Classification] = mapped_column(
        _enum(Classification, "classification")
    )
    old_reason: Mapped[str | None] = mapped_column(String(64))
    new_reason: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)

    call: Mapped[Call] = relationship(back_populates="history")
    changed_by: Mapped[User] = relationship()
