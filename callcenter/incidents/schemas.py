"""Request and response bodies of the agencies and incidents API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from callcenter.api.deps import MAX_INT
from callcenter.incidents.followup import FollowUp


class AgencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z0-9_\-]{2,32}$")
    name: str = Field(min_length=1, max_length=128)
    kind: str = Field(min_length=1, max_length=32)


class AgencyPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=128)
    kind: str | None = Field(default=None, min_length=1, max_length=32)
    active: bool | None = None


class AgencyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    kind: str
    active: bool


class AssignmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agency_code: str
    primary: bool = False


class IncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_id: int = Field(ge=1, le=MAX_INT)
    category: str
    district: str | None = None
    village: str | None = None
    location_text: str | None = Field(default=None, max_length=2000)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    summary: str = Field(default="", max_length=10000)
    assignments: list[AssignmentIn] = Field(default_factory=list)


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: FollowUp
    reason: str | None = Field(default=None, max_length=2000)
    # The version read; when given and stale, the change is refused with 409.
    version: int | None = Field(default=None, ge=0, le=MAX_INT)


class StepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    old_status: FollowUp | None
    new_status: FollowUp
    reason: str | None
    changed_by_id: int | None
    # Set when no user made the step: who (name or phone number) and how (link, sms, notify).
    actor: str | None = None
    via: str | None = None
    changed_at: datetime


class AssignmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    incident_id: int
    agency: AgencyOut
    is_primary: bool
    status: FollowUp
    status_reason: str | None
    assigned_at: datetime
    status_changed_at: datetime
    version: int
    history: list[StepOut]


class IncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    call_id: int
    category: str
    district: str | None
    village: str | None
    location_text: str | None
    latitude: float | None
    longitude: float | None
    summary: str
    created_by_id: int
    created_at: datetime
    assignments: list[AssignmentOut]


class OverdueOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    incident_id: int
    agency: AgencyOut
    is_primary: bool
    status: FollowUp
    assigned_at: datetime
    minutes_waiting: int


class DistrictOut(BaseModel):
    name: str
    villages: list[str]


class IncidentOptions(BaseModel):
    categories: list[str]
    districts: list[DistrictOut]
    followup_overdue_minutes: int
