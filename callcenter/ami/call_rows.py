"""A call's row as the store writes it: the tracker's facts as column values, cut to the
columns' sizes, and the statements that insert and update calls."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Table, bindparam, select

from callcenter.ami.call_state import CallState
from callcenter.db import utcnow
from callcenter.models import Call, Outcome
from callcenter.phone import CallerNumber, normalise

_CALLS: Table = Call.__table__  # type: ignore[assignment]

# Statements run for every batch, built once (SQLAlchemy then reuses their compiled form
# without rebuilding and re-hashing them). Each runs once a batch with many parameter sets:
# one round trip for the batch's new calls, one for its callers, not one or two a call.
INSERT_CALLS = _CALLS.insert().returning(_CALLS.c.id, sort_by_parameter_order=True)
# The stored rows of a batch's calls (ids, and what the never-reopen and caller rules need).
FIND_CALLS = select(_CALLS.c.id, _CALLS.c.uniqueid, _CALLS.c.outcome, _CALLS.c.caller_key_id).where(
    _CALLS.c.pbx == bindparam("pbx"),
    _CALLS.c.uniqueid.in_(bindparam("uniqueids", expanding=True)),
)
# changes + 1: the statistics rollups notice every update (version is the operators' own).
UPDATE_CALLS = (
    _CALLS.update().where(_CALLS.c.id == bindparam("row_id")).values(changes=_CALLS.c.changes + 1)
)


def clip_text(value: str | None, limit: int) -> str | None:
    # PostgreSQL refuses NUL in text; columns have a length.
    if value is None:
        return None
    return value.replace("\x00", "\\x00")[:limit]


def caller_name(value: str | None) -> str | None:
    """The caller's name, or None when the network sent none (AMI says ``<unknown>``, CDR
    leaves it empty); the raw value stays in the call's events."""
    if value is None or value.strip() in ("", "<unknown>"):
        return None
    return clip_text(value, 128)


# Asterisk's AST_MAX_UNIQUEID: the longest Uniqueid or Linkedid it sends (the column's size).
UNIQUEID_MAX = 150
_INT4 = range(-(2**31), 2**31)


def int4_or_none(value: object) -> int | None:
    """A number for an INTEGER column, or None: a header such as ``Cause:
    99999999999999999999`` does not fit one (the call's telephony_state keeps it, as text
    when it is past 64 bits; the raw event keeps it as sent).

    >>> int4_or_none(16), int4_or_none(3000000000), int4_or_none("16")
    (16, None, None)
    """
    return value if type(value) is int and value in _INT4 else None


@lru_cache(maxsize=65536)
def normalise_cached(raw: str, region: str) -> CallerNumber:
    return normalise(raw, region)


def call_values(state: CallState, number: CallerNumber) -> dict[str, Any]:
    return {
        "uniqueid": state.uniqueid,  # the key: one that does not fit is refused, isolated
        "linkedid": clip_text(state.linkedid, UNIQUEID_MAX),
        "channel": clip_text(state.channel, 128),
        "caller_id_raw": clip_text(state.caller_id_raw, 128),
        "caller_id_name": caller_name(state.caller_id_name),
        "caller_e164": number.e164,
        "caller_id_status": number.status,
        "caller_id_private": state.private,
        "outcome": Outcome(state.outcome),
        "started_at": state.started_at,
        "queued_at": state.queued_at,
        "answered_at": state.answered_at,
        "ended_at": state.ended_at,
        "queue": clip_text(state.queue, 64),
        "queue_position": int4_or_none(state.queue_position),
        "operator": clip_text(state.operator, 128),
        "operator_interface": clip_text(state.operator_interface, 128),
        "wait_seconds": int4_or_none(state.wait_seconds),
        "answer_seconds": int4_or_none(state.answer_seconds),
        "talk_seconds": int4_or_none(state.talk_seconds),
        "ended_by": state.ended_by,
        "hangup_cause": int4_or_none(state.hangup_cause),
        "hangup_cause_txt": clip_text(state.hangup_cause_txt, 64),
        "transferred_to": clip_text(state.transferred_to, 128),
        "overflows": state.overflows,
        "transferred_at": state.transferred_at,
        "gap": state.gap,
        "gap_started_at": state.gap_started_at,
        "telephony_state": json_safe(state.snapshot()),
        "updated_at": utcnow(),
    }


def json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """PostgreSQL's JSON refuses NUL: written as the text ``\\x00``, as in ``clip_text``. A number
    past 64 bits (which no driver binds) is kept as its text.

    >>> json_safe({"hangup_cause": 99999999999999999999, "name": "a\\x00b"})
    {'hangup_cause': '99999999999999999999', 'name': 'a\\\\x00b'}
    """
    try:
        if b"\\u0000" not in orjson.dumps(data):
            return data
    except TypeError:  # orjson: "Integer exceeds 64-bit range"
        pass
    cleaned: dict[str, Any] = _storable(data)
    return cleaned


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if type(value) is int and not -(2**63) <= value < 2**63:
        return str(value)
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    return value
