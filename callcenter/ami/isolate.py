"""When the database refuses a batch: store every row it takes, and keep the ones it refuses.

One bad value (a number past a column's range, a key longer than any Asterisk sends) made the
database refuse a whole batch, and with it the events of every other call in it. The batch is
split in halves until the refused row is alone: the call states first (events link to them),
then the events. A row refused alone is kept in ``ami_quarantine`` with its text and the
database's reason. A connection lost half-way raises StoreUnavailable as ``CallStore.write``
does: what was written is written again later, which changes nothing (writes are idempotent).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy import insert

from callcenter.ami.batch import Batch, StoredEvent
from callcenter.ami.call_state import CallState
from callcenter.ami.models import QuarantinedRow
from callcenter.ami.store import CallStore, StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


def write_isolating(store: CallStore, batch: Batch) -> int:
    """Store ``batch``; when refused, all of it but the refused rows. Returns how many rows
    went to the quarantine. Raises StoreUnavailable when the database is gone."""
    try:
        store.write(batch)
        return 0
    except StoreUnavailable:
        raise
    except Exception as exc:  # refused, or a value no driver binds: never the whole batch
        log.error("AMI store refused a batch (%s): storing its rows one part at a time", exc)
    refused_calls: list[tuple[CallState, str]] = []
    refused_events: list[tuple[StoredEvent, str]] = []
    _halves(
        store,
        list(batch.calls.values()),
        lambda part: Batch(calls={s.uniqueid: s for s in part}),
        refused_calls,
    )
    _halves(store, batch.events, lambda part: Batch(events=list(part)), refused_events)
    quarantine(store, refused_calls, refused_events)
    return len(refused_calls) + len(refused_events)


def _halves(
    store: CallStore,
    items: Sequence[T],
    make: Callable[[Sequence[T]], Batch],
    refused: list[tuple[T, str]],
) -> None:
    if not items:
        return
    try:
        store.write(make(items))
        return
    except StoreUnavailable:
        raise
    except Exception as exc:
        if len(items) == 1:
            refused.append((items[0], f"{type(exc).__name__}: {exc}"[:2000]))
            return
    middle = len(items) // 2
    _halves(store, items[:middle], make, refused)
    _halves(store, items[middle:], make, refused)


def quarantine(
    store: CallStore,
    calls: Sequence[tuple[CallState, str]],
    events: Sequence[tuple[StoredEvent, str]],
) -> None:
    rows = [
        {
            "pbx": store.pbx,
            "kind": "call",
            "uniqueid": _clean(state.uniqueid),
            "reason": _clean(reason),
            "raw": _clean(json.dumps(state.snapshot(), default=str)),
            "received_at": state.last_event_at,
        }
        for state, reason in calls
    ]
    rows += [
        {
            "pbx": store.pbx,
            "kind": "event",
            "uniqueid": _clean(event.frame.get("Uniqueid")),
            "reason": _clean(reason),
            "raw": _clean(event.frame.text),
            "received_at": event.received_at,
        }
        for event, reason in events
    ]
    if not rows:
        return
    for row in rows:
        log.error(
            "AMI store refused a %s of %s even alone (%s): kept in ami_quarantine",
            row["kind"],
            row["uniqueid"],
            row["reason"],
        )
    try:
        with store.factory() as session, session.begin():
            session.execute(insert(QuarantinedRow), rows)
    except Exception as exc:
        # Connection problems and refusals alike: the rows are in the log above, the caller
        # spools or retries the batch.
        raise StoreUnavailable(f"quarantine not written: {type(exc).__name__}: {exc}") from exc


def _clean(value: str | None) -> str | None:
    return value.replace("\x00", "\\x00") if value is not None else None
