"""What the calls API reads and returns. Pydantic only: no database, no FastAPI."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from callcenter.ami.frames import headers_of
from callcenter.models import CallerIdStatus, Classification, Outcome

MAX_NOTE_LENGTH = 2000


class ClassificationFilter(enum.StrEnum):
    """A classification, or ``untagged`` for calls no operator has classified yet."""

    emergency = "emergency"
    prank = "prank"
    non_emergency = "non_emergency"
    untagged = "untagged"


class CallSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    pbx: str
    uniqueid: str
    linkedid: str
    caller_id_raw: str
    caller_id_name: str | None = Field(description="Null when the network sent no name.")
    caller_e164: str | None
    caller_id_status: CallerIdStatus
    caller_id_private: bool = Field(
        description="The caller withheld the number (presentation restricted); the number is "
        "kept for call-back and masked in lists for supervisors."
    )
    outcome: Outcome
    started_at: datetime
    queued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    queue: str | None
    operator: str | None
    wait_seconds: int | None = Field(
        description="From the first queue join to the answer (or the caller leaving), over "
        "every queue round: Asterisk's HoldTime when the caller was queued once."
    )
    answer_seconds: int | None = Field(
        description="From the call reaching the PBX to an operator answering, the IVR included."
    )
    overflows: int = Field(description="Queue rounds that timed out (Emergency112Overflow).")
    talk_seconds: int | None
    classification: Classification | None
    classification_reason: str | None
    classification_note: str | None
    classified_by_id: int | None
    classified_at: datetime | None
    version: int = Field(description="Send it back as If-Match (or `version`) when classifying.")


class CallEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    uniqueid: str | None
    linkedid: str | None
    event_time: datetime
    received_at: datetime
    headers: list[list[str]] = Field(description="The AMI headers in wire order: [[key, value]].")

    @model_validator(mode="before")
    @classmethod
    def _headers_from_raw(cls, value: Any) -> Any:
        # Stored as the frame's text (call_events.raw): split only when a call is read.
        raw = getattr(value, "raw", None)
        if isinstance(raw, str):
            return {
                name: getattr(value, name) for name in cls.model_fields if name != "headers"
            } | {"headers": headers_of(raw)}
        return value


class ClassificationChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    changed_at: datetime
    changed_by_id: int
    changed_by: str = Field(description="The username of who made the change.")
    old_classification: Classification | None
    new_classification: Classification
    old_reason: str | None
    new_reason: str | None
    note: str | None

    @field_validator("changed_by", mode="before")
    @classmethod
    def _username(cls, value: Any) -> Any:
        # Read from the ORM row, changed_by is the User: show who by name.
        return getattr(value, "username", value)


class IvrRunOut(BaseModel):
    """What the IVR did on the call: flag, priority, look-up; `skipped` when no FastAGI slot
    was free and the caller was queued at once, unchecked."""

    model_config = ConfigDict(from_attributes=True)

    outcome: str
    skipped: bool = False
    flag: str | None
    priority: int | None
    warning_played: bool
    lookup_status: str | None
    lookup_ms: int | None
    prompts_failed: int
    started_at: datetime
    ended_at: datetime | None

    @model_validator(mode="after")
    def _skipped(self) -> IvrRunOut:
        self.skipped = self.outcome.startswith("skipped")
        return self


class CallDetail(CallSummary):
    channel: str
    queue_position: int | None
    operator_interface: str | None
    ended_by: str | None
    hangup_cause: int | None
    hangup_cause_txt: str | None
    transferred_to: str | None
    transferred_at: datetime | None
    gap: bool
    created_at: datetime
    updated_at: datetime
    events: list[CallEventOut] | None = Field(
        default=None, description="The raw AMI events, only with ?events=true."
    )
    history: list[ClassificationChangeOut]
    ivr: IvrRunOut | None = None  # None: the IVR did not run (or has not recorded yet)


class CallPage(BaseModel):
    items: list[CallSummary]
    total: int = Field(description="How many calls match the filters, over all pages.")
    limit: int
    offset: int


class ClassificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    classification: Classification
    reason: str | None = Field(
        default=None, description="One of the configured classification reasons, or null."
    )
    note: str | None = Field(default=None, max_length=MAX_NOTE_LENGTH)
    version: int | None = Field(
        default=None,
        ge=0,
        le=2**53 - 1,  # as callcenter.api.deps.MAX_INT
        description="The call's version as read; a different current version gets 409. "
        "The If-Match header does the same; when both are given both must match.",
    )


class NumberOut(BaseModel):
    raw: str
    status: CallerIdStatus
    e164: str | None
    line_type: str | None
    region: str | None


class ClassificationCounts(BaseModel):
    total: int
    emergency: int
    prank: int
    non_emergency: int
    untagged: int


class CallerOut(BaseModel):
    number: NumberOut
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    counts: ClassificationCounts
    calls: CallPage
