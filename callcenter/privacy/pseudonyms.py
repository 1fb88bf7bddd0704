"""Replacing a caller's number by a pseudonym everywhere it is stored, so statistics stay exact.

A pseudonym is a keyed hash of the caller's identity (``CallerNumber.key``: the E.164 number,
or ``<status>:<raw>``), the same for every row of one caller: counts per caller, distinct
callers and prank rankings come out as before, but nobody can read the number back. The key is
the token secret (rotating it gives later pseudonyms another value).

>>> pseudonym("+6281234567890", "k") == pseudonym("+6281234567890", "k")
True
>>> pseudonym("+6281234567890", "k")[:5], len(pseudonym("+6281234567890", "k"))
('anon:', 29)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from callcenter.db import utcnow
from callcenter.ivr.models import IvrRun
from callcenter.models import Call, Caller, CallerIdStatus, CallEvent
from callcenter.stats.models import DailyPrankCaller, MonthlyPrankCaller

PREFIX = "anon:"
CHUNK = 1000
# Caller IDs that say nothing about a person stay as they are.
_IMPERSONAL = (CallerIdStatus.withheld, CallerIdStatus.short_code)


def pseudonym(identity: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), identity.encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest[:24]


def identity(e164: str | None, raw: str, status: CallerIdStatus) -> str:
    """What ``CallerNumber.key`` is for this caller (the callers table's number_key)."""
    return e164 if e164 else f"{status.value}:{raw}"


def _chunks(session: Session, query: Select[*tuple[Any, ...]]) -> list[Sequence[Any]]:
    rows = session.execute(query).all()
    return [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)]


def calls(session: Session, where: ColumnElement[bool], secret: str) -> int:
    """Pseudonymise the caller number and name of the calls ``where`` selects."""
    query = select(Call.id, Call.caller_e164, Call.caller_id_raw, Call.caller_id_status).where(
        where,
        or_(
            and_(Call.caller_id_status.not_in(_IMPERSONAL), ~Call.caller_id_raw.startswith(PREFIX)),
            Call.caller_id_name != "",
        ),
    )
    done = 0
    now = utcnow()
    for chunk in _chunks(session, query):
        for call_id, e164, raw, status in chunk:
            personal = status not in _IMPERSONAL
            name = pseudonym(identity(e164, raw, status), secret) if personal else raw
            session.execute(
                update(Call)
                .where(Call.id == call_id)
                .values(
                    caller_id_raw=name,
                    caller_e164=name if e164 else None,
                    caller_id_name="",
                    version=Call.version + 1,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            done += 1
    return done


def ivr_runs(session: Session, where: ColumnElement[bool], secret: str) -> int:
    query = select(IvrRun.id, IvrRun.caller_e164, IvrRun.caller_id_raw).where(
        where, ~IvrRun.caller_id_raw.startswith(PREFIX), IvrRun.caller_id_raw != ""
    )
    done = 0
    for chunk in _chunks(session, query):
        for run_id, e164, raw in chunk:
            name = pseudonym(e164 or f"{CallerIdStatus.invalid.value}:{raw}", secret)
            session.execute(
                update(IvrRun)
                .where(IvrRun.id == run_id)
                .values(caller_id_raw=name, caller_e164=name if e164 else None)
                .execution_options(synchronize_session=False)
            )
            done += 1
    return done


def callers(session: Session, where: ColumnElement[bool], secret: str) -> int:
    query = select(Caller.id, Caller.number_key, Caller.e164, Caller.status).where(
        where, ~Caller.number_key.startswith(PREFIX)
    )
    done = 0
    for chunk in _chunks(session, query):
        for caller_id, key, e164, status in chunk:
            if status in _IMPERSONAL:
                continue
            name = pseudonym(key, secret)
            session.execute(
                update(Caller)
                .where(Caller.id == caller_id)
                .values(number_key=name, e164=name if e164 else None, raw_last="")
                .execution_options(synchronize_session=False)
            )
            done += 1
    return done


def prank_rollups(
    session: Session,
    secret: str,
    *,
    before_day: int | None = None,
    before_month: int | None = None,
    e164: str | None = None,
) -> int:
    """The prank-caller rollups' numbers: of days/months before a bound, or of one caller."""
    done = 0
    for table, period, bound in (
        (DailyPrankCaller, DailyPrankCaller.local_day, before_day),
        (MonthlyPrankCaller, MonthlyPrankCaller.month, before_month),
    ):
        where = [~table.caller_e164.startswith(PREFIX)]
        if e164 is not None:
            where.append(table.caller_e164 == e164)
        elif bound is not None:
            where.append(period < bound)
        else:
            continue
        numbers = session.scalars(select(table.caller_e164).where(*where).distinct()).all()
        for number in numbers:
            result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                update(table)
                .where(*where, table.caller_e164 == number)
                .values(caller_e164=pseudonym(number, secret))
                .execution_options(synchronize_session=False)
            )
            done += result.rowcount
    return done


def delete_raw_events(session: Session, where: ColumnElement[bool]) -> int:
    """Raw AMI frames hold caller numbers too: they go (the call rows stay)."""
    done = 0
    while True:
        ids = session.scalars(select(CallEvent.id).where(where).limit(CHUNK * 5)).all()
        if not ids:
            return done
        session.execute(delete(CallEvent).where(CallEvent.id.in_(ids)))
        done += len(ids)
