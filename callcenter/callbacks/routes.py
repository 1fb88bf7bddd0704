"""The call-back worklist over REST, for operators."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from callcenter.api.auth import OperatorUser
from callcenter.api.deps import Id, SessionDep, SettingsDep
from callcenter.callbacks import service
from callcenter.callbacks.models import CallbackOutcome
from callcenter.db import utcnow

router = APIRouter(prefix="/api/v1/callbacks", tags=["callbacks"])


class ItemOut(BaseModel):
    call_id: int
    caller: str
    started_at: datetime
    why: str
    attempts: int
    last_attempt_at: datetime | None


class AttemptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: CallbackOutcome
    note: str | None = Field(default=None, max_length=2000)


class AttemptOut(BaseModel):
    id: int
    call_id: int
    outcome: CallbackOutcome
    note: str | None
    attempted_by_id: int
    attempted_at: datetime
    still_open: bool


@router.get("")
def worklist(session: SessionDep, settings: SettingsDep, _user: OperatorUser) -> list[ItemOut]:
    items = service.worklist(
        session,
        now=utcnow(),
        window_hours=settings.callbacks.window_hours,
        max_attempts=settings.callbacks.max_attempts,
    )
    return [ItemOut(**vars(item)) for item in items]


@router.post("/{call_id}/attempts", status_code=status.HTTP_201_CREATED)
def record_attempt(
    call_id: Id, body: AttemptIn, session: SessionDep, settings: SettingsDep, user: OperatorUser
) -> AttemptOut:
    attempt, still_open = service.record_attempt(
        session,
        user=user,
        call_id=call_id,
        outcome=body.outcome,
        note=body.note,
        now=utcnow(),
        window_hours=settings.callbacks.window_hours,
        max_attempts=settings.callbacks.max_attempts,
    )
    return AttemptOut(
        id=attempt.id,
        call_id=attempt.call_id,
        outcome=attempt.outcome,
        note=attempt.note,
        attempted_by_id=attempt.attempted_by_id,
        attempted_at=attempt.attempted_at,
        still_open=still_open,
    )
