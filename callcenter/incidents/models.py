"""Agencies, incidents, agency assignments and their follow-up history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db import UTCDateTime, utcnow
from callcenter.incidents.followup import FollowUp
from callcenter.models import Base, BigId, Call, User, _enum


class Agency(Base):
    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Incident(Base):
    """What an emergency call was about and where: one per call."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_local_day_district", "call_local_day", "district"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), unique=True)
    # The call's local date as YYYYMMDD (calls never move in time): statistics filter on it.
    call_local_day: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(32))
    district: Mapped[str | None] = mapped_column(String(64))
    village: Mapped[str | None] = mapped_column(String(64))
    location_text: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    summary: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    call: Mapped[Call] = relationship()
    created_by: Mapped[User] = relationship()
    assignments: Mapped[list[Assignment]] = relationship(
        back_populates="incident", order_by="Assignment.id"
    )


class Assignment(Base):
    """One agency asked to act on an incident, and how far it followed it up."""

    __tablename__ = "incident_assignments"
    __table_args__ = (
        UniqueConstraint("incident_id", "agency_id", name="uq_incident_assignments_agency"),
        # At most one primary (responsible) agency per incident.
        Index(
            "uq_incident_assignments_primary",
            "incident_id",
            unique=True,
            sqlite_where=text("is_primary = 1"),
            postgresql_where=text("is_primary"),
        ),
        Index(
            "ix_incident_assignments_stats", "call_local_day", "is_primary", "agency_id", "status"
        ),
        Index("ix_incident_assignments_open", "status", "assigned_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[FollowUp] = mapped_column(_enum(FollowUp, "follow_up"), default=FollowUp.pending)
    status_reason: Mapped[str | None] = mapped_column(Text)
    call_local_day: Mapped[int] = mapped_column(Integer)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    assigned_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    incident: Mapped[Incident] = relationship(back_populates="assignments")
    agency: Mapped[Agency] = relationship()
    history: Mapped[list[AssignmentChange]] = relationship(
        order_by="AssignmentChange.id", viewonly=True
    )


class AssignmentChange(Base):
    """Every follow-up step: who, when, from what, to what, why."""

    __tablename__ = "incident_assignment_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("incident_assignments.id"), index=True)
    old_status: Mapped[FollowUp | None] = mapped_column(_enum(FollowUp, "follow_up"))
    new_status: Mapped[FollowUp] = mapped_column(_enum(FollowUp, "follow_up"))
    reason: Mapped[str | None] = mapped_column(Text)
    # A user, or (acknowledgement from an agency, which has no account) nobody: then actor
    # says who (the name typed in the form, the replying phone number) and via how.
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str | None] = mapped_column(String(128))
    via: Mapped[str | None] = mapped_column(String(16))  # None: the console; link, sms, notify
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    changed_by: Mapped[User | None] = relationship()
