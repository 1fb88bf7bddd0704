"""Writes what the tracker saw: raw events append-only, call rows upserted, one transaction a batch.

Idempotent: an event is stored once per (pbx, dedup_key), a call row is keyed by (pbx, uniqueid)
and overwritten with the tracker's facts, which a repeated event does not change. A final row is
never turned back into a live one (a replay that starts mid-call cannot undo its end).

The listener never bumps ``Call.version``: that counter guards operators' classification edits,
and a telephony update must not make an operator's tag fail with 409.

The rows themselves are built in call_rows.py, caller_counts.py and event_rows.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from callcenter.ami.batch import Batch
from callcenter.ami.call_rows import (
    FIND_CALLS,
    INSERT_CALLS,
    UPDATE_CALLS,
    call_values,
    clip_text,
    normalise_cached,
)
from callcenter.ami.call_state import CallState
from callcenter.ami.caller_counts import COUNT_CALLERS, CallerCount, caller_row_ids
from callcenter.ami.event_rows import DuplicateEvents, append_events
from callcenter.db.sqlite_checkpoints import WalCheckpointer
from callcenter.models import Call, CallerIdStatus, Outcome
from callcenter.phone import CallerNumber, load_places


class StoreUnavailable(Exception):
    """The database could not take the batch; nothing of it was written."""


class StoreRejected(Exception):
    """The database refused the batch's data (not a connection problem): retrying won't help."""


# Caller row ids remembered by number: a cache, emptied when it grows this large (a rare, cheap
# reset; a forgotten number costs one look-up), so a year of distinct callers never piles up.
MAX_CACHED_CALLERS = 100_000


class CallStore:
    def __init__(self, factory: sessionmaker[Session], *, pbx: str, region: str = "ID") -> None:
        self.factory = factory
        self.pbx = pbx
        self.region = region
        self._caller_ids: dict[str, int] = {}  # number key -> callers.id
        self._checkpointer: WalCheckpointer | None = None

    def start(self) -> None:
        """Before a stream of writes: on an SQLite file, checkpoints move to a thread of their
        own (see callcenter.db.sqlite_checkpoints); the callers' place names are loaded."""
        load_places()
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
            try:
                self._write(batch, careful=False)
            except DuplicateEvents:
                self._caller_ids.clear()  # rows it inserted were rolled back
                self._write(batch, careful=True)
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

    def _write(self, batch: Batch, *, careful: bool) -> None:
        with self.factory() as session, session.begin():
            # Calls whose events are in the batch but that did not change in it: their ids
            # come with the changed calls' rows, in the same look-up.
            others = {e.call_uniqueid for e in batch.events if e.call_uniqueid}
            others.difference_update(batch.calls)
            ids = self._upsert_calls(session, batch.calls.values(), others)
            dialect = self.engine.dialect.name
            append_events(session, self.pbx, dialect, batch.events, ids, careful=careful)

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

    def _upsert_calls(
        self, session: Session, states: Iterable[CallState], others: Iterable[str] = ()
    ) -> dict[str, int]:
        """The batch's call rows inserted or updated, its callers counted; returns the row id
        of each call, and of each call in ``others`` (the batch's events name them) found in
        the same look-up: one round trip for both."""
        states = list(states)
        ids: dict[str, int] = {}
        wanted = {s.uniqueid for s in states}
        wanted.update(others)
        if not wanted:
            return ids
        existing: dict[str, Any] = {}
        for found in session.execute(FIND_CALLS, {"pbx": self.pbx, "uniqueids": list(wanted)}):
            existing[found.uniqueid] = found
            ids[found.uniqueid] = found.id
        written = []
        for state in states:
            row = existing.get(state.uniqueid)
            if row is not None and Outcome(row.outcome).is_final and not state.is_final:
                continue  # never reopen a finished call
            written.append((state, row, normalise_cached(state.caller_id_raw, self.region)))
        callers = self._find_callers(session, [(number, state) for state, _, number in written])
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        counts: dict[int, CallerCount] = {}
        for state, row, number in written:
            values = call_values(state, number)
            current = None if row is None else row.caller_key_id
            values["caller_key_id"] = self._count_caller(
                callers.get(number.key), current, number.raw, state.started_at, counts
            )
            if row is None:
                values["pbx"] = self.pbx
                inserts.append(values)
            else:
                values["row_id"] = row.id
                updates.append(values)
        if inserts:
            new_ids = session.execute(INSERT_CALLS, inserts).scalars()
            ids.update(zip((v["uniqueid"] for v in inserts), new_ids, strict=True))
        if updates:
            session.execute(UPDATE_CALLS, updates)
        if counts:
            session.execute(COUNT_CALLERS, [asdict(count) for count in counts.values()])
        return ids

    def _find_callers(
        self, session: Session, numbers: list[tuple[CallerNumber, CallState]]
    ) -> dict[str, int]:
        """The caller row of each number (withheld ones have none), by ``number.key``: from
        the cache, the others found or made at once and remembered."""
        ids: dict[str, int] = {}
        missing = []
        for number, state in numbers:
            if number.status == CallerIdStatus.withheld:
                continue
            known = self._caller_ids.get(number.key)
            if known is None:
                missing.append((number, state.started_at))
            else:
                ids[number.key] = known
        if not missing:
            return ids
        found = caller_row_ids(session, self.engine.dialect.name, missing)
        ids.update(found)
        for key, row_id in found.items():
            if len(self._caller_ids) >= MAX_CACHED_CALLERS:
                self._caller_ids.clear()
            self._caller_ids[key] = row_id
        return ids

    def _count_caller(
        self,
        target: int | None,
        current: int | None,
        raw: str,
        started_at: datetime,
        counts: dict[int, CallerCount],
    ) -> int | None:
        """The call counted once in its caller's row ``target`` (in ``counts``, written once
        a batch), and no longer in ``current`` if it moved; None for a withheld number."""
        if target == current:
            return current
        if current is not None:
            counts.setdefault(current, CallerCount(current)).delta -= 1
        if target is not None:
            counts.setdefault(target, CallerCount(target)).gain(clip_text(raw, 128), started_at)
        return target
