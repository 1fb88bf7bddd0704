"""Writes what the tracker saw: raw events append-only, call rows upserted, one transaction a batch.

Idempotent: an event is stored once per (pbx, dedup_key), a call row is keyed by (pbx, uniqueid)
and overwritten with the tracker's facts, which a repeated event does not change. A final row is
never turned back into a live one (a replay that starts mid-call cannot undo its end).

The listener never bumps ``Call.version``: that counter guards operators' classification edits,
and a telephony update must not make an operator's tag fail with 409.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
import psycopg
from sqlalchemy import Engine, Insert, Table, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from callcenter.ami.call_state import CallState, Tracked
from callcenter.ami.frames import Frame
from callcenter.ami.identity import EventKeys
from callcenter.db import utcnow
from callcenter.db.sqlite_checkpoints import WalCheckpointer
from callcenter.models import Call, Caller, CallerIdStatus, CallEvent, Outcome
from callcenter.phone import CallerNumber, normalise


class StoreUnavailable(Exception):
    """The database could not take the batch; nothing of it was written."""


class StoreRejected(Exception):
    """The database refused the batch's data (not a connection problem): retrying won't help."""


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~1 µs an event
class StoredEvent:
    frame: Frame
    event_time: datetime
    received_at: datetime
    call_uniqueid: str | None
    dedup_key: str = ""  # the event's identity (callcenter.ami.identity); "" for the frame's


@dataclass(slots=True)
class Batch:
    events: list[StoredEvent] = field(default_factory=list)
    calls: dict[str, CallState] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.events) + len(self.calls)

    def add(self, event: StoredEvent | None, changed: CallState | None) -> None:
        if event is not None:
            self.events.append(event)
        if changed is not None:
            self.calls[changed.uniqueid] = changed

    def add_tracked(
        self, frame: Frame, tracked: Tracked, received_at: datetime, keys: EventKeys
    ) -> None:
        """What the tracker made of a frame: its event row (keyed by ``keys``, the stream's),
        if it belongs to a call, and the call's change."""
        event = None
        if tracked.call_uniqueid is not None:
            key = keys.key_of(frame.dedup_key)
            event = StoredEvent(frame, tracked.event_time, received_at, tracked.call_uniqueid, key)
        self.add(event, tracked.changed)


_CALLS: Table = Call.__table__  # type: ignore[assignment]
_EVENTS: Table = CallEvent.__table__  # type: ignore[assignment]
_CALLERS: Table = Caller.__table__  # type: ignore[assignment]

# Statements run for every batch, built once (SQLAlchemy then reuses their compiled form
# without rebuilding and re-hashing them). Each runs once a batch with many parameter sets:
# one round trip for the batch's new calls, one for its callers, not one or two a call.
_INSERT_CALLS = _CALLS.insert().returning(_CALLS.c.id, sort_by_parameter_order=True)
# changes + 1: the statistics rollups notice every update (version is the operators' own).
_UPDATE_CALLS = (
    _CALLS.update().where(_CALLS.c.id == bindparam("row_id")).values(changes=_CALLS.c.changes + 1)
)
_SEEN = bindparam("seen", type_=_CALLERS.c.last_seen_at.type)
_COUNT_CALLERS = (
    update(_CALLERS)
    .where(_CALLERS.c.id == bindparam("caller_id"))
    .values(
        call_count=_CALLERS.c.call_count + bindparam("delta"),
        raw_last=func.coalesce(
            bindparam("raw_last", type_=_CALLERS.c.raw_last.type), _CALLERS.c.raw_last
        ),
        last_seen_at=case((_CALLERS.c.last_seen_at < _SEEN, _SEEN), else_=_CALLERS.c.last_seen_at),
    )
)


@dataclass(slots=True)
class _CallerCount:
    """What a batch changes in one caller row: calls gained minus lost, and from the calls
    gained, the last raw number and the latest start."""

    caller_id: int
    delta: int = 0
    raw_last: str | None = None
    seen: datetime | None = None

    def gain(self, raw: str | None, seen: datetime) -> None:
        self.delta += 1
        self.raw_last = raw
        if self.seen is None or seen > self.seen:
            self.seen = seen


def _text(value: str | None, limit: int) -> str | None:
    # PostgreSQL refuses NUL in text; columns have a length.
    if value is None:
        return None
    return value.replace("\x00", "\\x00")[:limit]


def caller_name(value: str | None) -> str | None:
    """The caller's name, or None when the network sent none (AMI says ``<unknown>``, CDR
    leaves it empty); the raw value stays in the call's events."""
    if value is None or value.strip() in ("", "<unknown>"):
        return None
    return _text(value, 128)


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


# Caller row ids remembered by number: a cache, emptied when it grows this large (a rare, cheap
# reset; a forgotten number costs one look-up), so a year of distinct callers never piles up.
MAX_CACHED_CALLERS = 100_000


def _insert(engine_name: str) -> Any:
    return postgresql.insert if engine_name == "postgresql" else sqlite.insert


class CallStore:
    def __init__(self, factory: sessionmaker[Session], *, pbx: str, region: str = "ID") -> None:
        self.factory = factory
        self.pbx = pbx
        self.region = region
        self._caller_ids: dict[str, int] = {}  # number key -> callers.id
        self._checkpointer: WalCheckpointer | None = None

    def start(self) -> None:
        """Before a stream of writes: on an SQLite file, checkpoints move to a thread of their
        own (see callcenter.db.sqlite_checkpoints)."""
        if WalCheckpointer.applies_to(self.engine):
            self._checkpointer = WalCheckpointer(self.engine)
            self._checkpointer.start()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None

    @property
    def engine(self) -> Engine:
        bind = self.factory.kw["bind"]
        assert isinstance(bind, Engine)
        return bind

    def write(self, batch: Batch) -> None:
        """Store one batch in one transaction, or raise StoreUnavailable and store none of it."""
        if not batch.events and not batch.calls:
            return
        try:
            with self.factory() as session, session.begin():
                ids = self._upsert_calls(session, batch.calls.values())
                self._append_events(session, batch.events, ids)
        except (OperationalError, InterfaceError) as exc:
            self._caller_ids.clear()  # rows it inserted were rolled back
            raise StoreUnavailable(f"{type(exc.orig).__name__}: {exc.orig}") from exc
        except DBAPIError as exc:
            self._caller_ids.clear()
            raise StoreRejected(f"{type(exc.orig).__name__}: {exc.orig}") from exc
        # COPY runs on psycopg's own cursor: its errors reach here unwrapped.
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self._caller_ids.clear()
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except psycopg.Error as exc:
            self._caller_ids.clear()
            raise StoreRejected(f"{type(exc).__name__}: {exc}") from exc
        except Exception:  # a value no driver binds: the transaction was rolled back too
            self._caller_ids.clear()
            raise

    def load_open_calls(self) -> list[CallState]:
        """Snapshots of calls left open by a previous listener, so the tracker resumes them."""
        live = [o for o in Outcome if not o.is_final]
        with self.factory() as session:
            rows = session.scalars(
                select(Call.telephony_state).where(Call.pbx == self.pbx, Call.outcome.in_(live))
            )
            return [CallState.from_snapshot(state) for state in rows if state]

    def load_states(self, uniqueids: Iterable[str]) -> dict[str, CallState]:
        """The tracker's snapshots of these calls (for reconciliation from Asterisk's logs)."""
        wanted = list(uniqueids)
        states: dict[str, CallState] = {}
        with self.factory() as session:
            for start in range(0, len(wanted), 500):
                rows = session.execute(
                    select(Call.uniqueid, Call.telephony_state).where(
                        Call.pbx == self.pbx, Call.uniqueid.in_(wanted[start : start + 500])
                    )
                )
                states.update(
                    (uid, CallState.from_snapshot(snapshot)) for uid, snapshot in rows if snapshot
                )
        return states

    # -- calls ------------------------------------------------------------------------------

    def _upsert_calls(self, session: Session, states: Iterable[CallState]) -> dict[str, int]:
        states = list(states)
        ids: dict[str, int] = {}
        if not states:
            return ids
        existing = {
            row.uniqueid: row
            for row in session.execute(
                select(Call.id, Call.uniqueid, Call.outcome, Call.caller_key_id).where(
                    Call.pbx == self.pbx, Call.uniqueid.in_([s.uniqueid for s in states])
                )
            )
        }
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        counts: dict[int, _CallerCount] = {}
        for state in states:
            number = normalise_cached(state.caller_id_raw, self.region)
            values = self._call_values(state, number)
            row = existing.get(state.uniqueid)
            if row is None:
                values["caller_key_id"] = self._count_caller(session, number, None, state, counts)
                values["pbx"] = self.pbx
                inserts.append(values)
                continue
            ids[state.uniqueid] = row.id
            if Outcome(row.outcome).is_final and not state.is_final:
                continue  # never reopen a finished call
            values["caller_key_id"] = self._count_caller(
                session, number, row.caller_key_id, state, counts
            )
            values["row_id"] = row.id
            updates.append(values)
        if inserts:
            new_ids = session.execute(_INSERT_CALLS, inserts).scalars()
            ids.update(zip((v["uniqueid"] for v in inserts), new_ids, strict=True))
        if updates:
            session.execute(_UPDATE_CALLS, updates)
        if counts:
            session.execute(_COUNT_CALLERS, [asdict(count) for count in counts.values()])
        return ids

    def _call_values(self, state: CallState, number: CallerNumber) -> dict[str, Any]:
        return {
            "uniqueid": state.uniqueid,  # the key: one that does not fit is refused, isolated
            "linkedid": _text(state.linkedid, UNIQUEID_MAX),
            "channel": _text(state.channel, 128),
            "caller_id_raw": _text(state.caller_id_raw, 128),
            "caller_id_name": caller_name(state.caller_id_name),
            "caller_e164": number.e164,
            "caller_id_status": number.status,
            "caller_id_private": state.private,
            "outcome": Outcome(state.outcome),
            "started_at": state.started_at,
            "queued_at": state.queued_at,
            "answered_at": state.answered_at,
            "ended_at": state.ended_at,
            "queue": _text(state.queue, 64),
            "queue_position": int4_or_none(state.queue_position),
            "operator": _text(state.operator, 128),
            "operator_interface": _text(state.operator_interface, 128),
            "wait_seconds": int4_or_none(state.wait_seconds),
            "answer_seconds": int4_or_none(state.answer_seconds),
            "talk_seconds": int4_or_none(state.talk_seconds),
            "ended_by": state.ended_by,
            "hangup_cause": int4_or_none(state.hangup_cause),
            "hangup_cause_txt": _text(state.hangup_cause_txt, 64),
            "transferred_to": _text(state.transferred_to, 128),
            "overflows": state.overflows,
            "transferred_at": state.transferred_at,
            "gap": state.gap,
            "gap_started_at": state.gap_started_at,
            "telephony_state": _json_safe(state.snapshot()),
            "updated_at": utcnow(),
        }

    def _count_caller(
        self,
        session: Session,
        number: CallerNumber,
        current: int | None,
        state: CallState,
        counts: dict[int, _CallerCount],
    ) -> int | None:
        """The caller row for this number, the call counted once in it (in ``counts``, written
        once a batch); a withheld number has none."""
        if number.status == CallerIdStatus.withheld:
            target = None
        else:
            target = self._caller_ids.get(number.key)
            if target is None:
                target = self._caller_id(session, number, state.started_at)
                if len(self._caller_ids) >= MAX_CACHED_CALLERS:
                    self._caller_ids.clear()
                self._caller_ids[number.key] = target
        if target == current:
            return current
        if current is not None:
            counts.setdefault(current, _CallerCount(current)).delta -= 1
        if target is not None:
            counts.setdefault(target, _CallerCount(target)).gain(
                _text(number.raw, 128), state.started_at
            )
        return target

    def _caller_id(self, session: Session, number: CallerNumber, seen: datetime) -> int:
        key = _text(number.key, 160)
        insert = _insert(self.engine.dialect.name)
        stmt: Insert = (
            insert(Caller)
            .values(
                number_key=key,
                e164=number.e164,
                raw_last=_text(number.raw, 128),
                status=number.status,
                line_type=number.line_type,
                region=_text(number.region, 128),
                call_count=0,
                first_seen_at=seen,
                last_seen_at=seen,
            )
            .on_conflict_do_nothing(index_elements=["number_key"])
        )
        session.execute(stmt)
        caller_id: int = session.scalars(select(Caller.id).where(Caller.number_key == key)).one()
        return caller_id

    # -- events -----------------------------------------------------------------------------

    def _append_events(
        self, session: Session, events: Sequence[StoredEvent], ids: dict[str, int]
    ) -> None:
        if not events:
            return
        missing = {
            e.call_uniqueid for e in events if e.call_uniqueid and e.call_uniqueid not in ids
        }
        if missing:
            ids.update(
                (row.uniqueid, row.id)
                for row in session.execute(
                    select(Call.uniqueid, Call.id).where(
                        Call.pbx == self.pbx, Call.uniqueid.in_(missing)
                    )
                )
            )
        # The hot path (every event): plain DBAPI executemany, no per-row ORM/Core work.
        sqlite = self.engine.dialect.name == "sqlite"
        when = _sqlite_time if sqlite else _same
        # The frames of one read share one arrival time: convert each once.
        arrival = {received: when(received) for received in {e.received_at for e in events}}
        pbx = self.pbx
        rows = [
            (
                pbx,
                e.dedup_key or e.frame.dedup_key,
                ids.get(e.call_uniqueid) if e.call_uniqueid else None,
                _text(e.frame.get("Uniqueid"), UNIQUEID_MAX),
                _text(e.frame.get("Linkedid"), UNIQUEID_MAX),
                _text(e.frame.name, 64) or "",
                when(e.event_time),
                arrival[e.received_at],
                _raw_text(e.frame),
            )
            for e in events
        ]
        if not sqlite:
            _copy_events(session, rows)
            return
        session.connection().exec_driver_sql(_INSERT_EVENTS_SQLITE, rows)


# The stored columns with their PostgreSQL types: COPY's binary format needs the types, and
# spares rendering and escaping every value as text (2.4 instead of 7.2 µs a row, client and
# server, measured with the benchmark's rows).
_EVENT_COLUMN_TYPES = {
    "pbx": "text",
    "dedup_key": "text",
    "call_id": "int8",
    "uniqueid": "text",
    "linkedid": "text",
    "name": "text",
    "event_time": "timestamptz",
    "received_at": "timestamptz",
    "raw": "text",
}
_EVENT_COLUMNS = ", ".join(_EVENT_COLUMN_TYPES)
_EVENT_TYPES = list(_EVENT_COLUMN_TYPES.values())
_INSERT_EVENTS_SQLITE = (
    f"INSERT INTO call_events ({_EVENT_COLUMNS}) "
    f"VALUES ({', '.join('?' * len(_EVENT_COLUMN_TYPES))}) "
    "ON CONFLICT (pbx, dedup_key) DO NOTHING"
)


def _copy_events(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """PostgreSQL: COPY straight into call_events, the quickest way in (about a quarter more
    events a second than going through a scratch table). COPY cannot skip a duplicate, so it
    runs in a savepoint: an event already stored (a replay, a re-delivery after a reconnect)
    aborts it, and the batch goes the careful way, :func:`_copy_events_deduplicated`."""
    dbapi = session.connection().connection.dbapi_connection
    assert isinstance(dbapi, psycopg.Connection)
    with dbapi.cursor() as cursor:
        cursor.execute("SAVEPOINT call_events_copy")
        try:
            with cursor.copy(
                f"COPY call_events ({_EVENT_COLUMNS}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(_EVENT_TYPES)
                for row in _unique(rows):
                    copy.write_row(row)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT call_events_copy")
            _copy_events_deduplicated(cursor, rows)
        cursor.execute("RELEASE SAVEPOINT call_events_copy")


def _unique(rows: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """The rows without repeats of a dedup_key within the batch (the first one stays)."""
    seen: set[str] = set()
    for row in rows:
        if row[1] not in seen:
            seen.add(row[1])
            yield row


def _copy_events_deduplicated(cursor: psycopg.Cursor[Any], rows: list[tuple[Any, ...]]) -> None:
    """COPY into a per-session scratch table, then one INSERT ... ON CONFLICT DO NOTHING."""
    columns = ", ".join(f"{name} {type_}" for name, type_ in _EVENT_COLUMN_TYPES.items())
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS call_events_in (n int4, {columns}) ON COMMIT DELETE ROWS"
    )
    with cursor.copy(
        f"COPY call_events_in (n, {_EVENT_COLUMNS}) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["int4", *_EVENT_TYPES])
        for n, row in enumerate(rows):
            copy.write_row((n, *row))
    # Ordered by n (not ctid, which a rolled-back batch can shuffle): ids follow the wire.
    cursor.execute(
        f"INSERT INTO call_events ({_EVENT_COLUMNS}) SELECT {_EVENT_COLUMNS} "
        "FROM call_events_in ORDER BY n ON CONFLICT (pbx, dedup_key) DO NOTHING"
    )


def _sqlite_time(value: datetime) -> str:
    """The exact text SQLAlchemy's DateTime stores on SQLite (UTC, naive, microseconds):
    isoformat, several times quicker than strftime, cut before its "+00:00".

    >>> from datetime import timedelta, timezone
    >>> _sqlite_time(datetime(2026, 11, 28, 9, 2, 3, 45, tzinfo=timezone(timedelta(hours=8))))
    '2026-11-28 01:02:03.000045'
    """
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def _same(value: datetime) -> datetime:
    return value


def _raw_text(frame: Frame) -> str:
    text = frame.text
    return text.replace("\x00", "\\x00") if "\x00" in text else text  # as in _text


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """PostgreSQL's JSON refuses NUL: written as the text ``\\x00``, as in ``_text``. A number
    past 64 bits (which no driver binds) is kept as its text.

    >>> _json_safe({"hangup_cause": 99999999999999999999, "name": "a\\x00b"})
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
