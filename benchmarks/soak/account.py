"""What the soak measures: event-to-commit latency (a poller that sees rows as they commit) and,
at the end, every generated call against the simulator's record.

>>> expected = {"1.1": "answered", "1.2": "unanswered", "1.3": "answered"}
>>> stored = [("1.1", "answered"), ("1.2", "answered"), ("1.2", "answered"), ("9.9", "failed")]
>>> Accounting.of(expected, stored)
Accounting(generated=3, stored=2, lost=1, duplicated=1, wrong_outcome=1, unexpected=1)
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from callcenter.db import make_engine
from callcenter.ivr.models import IvrRun
from callcenter.models import Call, CallEvent

POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Accounting:
    generated: int
    stored: int
    lost: int
    duplicated: int
    wrong_outcome: int
    unexpected: int
    wrong: list[tuple[str, str, str]] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def of(cls, expected: dict[str, str], stored: Iterable[tuple[str, str]]) -> Accounting:
        rows = Counter(uniqueid for uniqueid, _ in stored)
        outcomes = dict(stored)
        wrong = [
            (u, want, outcomes[u])
            for u, want in expected.items()
            if u in outcomes and outcomes[u] != want
        ]
        return cls(
            generated=len(expected),
            stored=sum(1 for u in expected if u in rows),
            lost=sum(1 for u in expected if u not in rows),
            duplicated=sum(n - 1 for u, n in rows.items() if u in expected and n > 1),
            wrong_outcome=len(wrong),
            unexpected=sum(1 for u in rows if u not in expected),
            wrong=wrong,
        )

    @property
    def ok(self) -> bool:
        return self.lost == self.duplicated == self.wrong_outcome == self.unexpected == 0

    def line(self) -> str:
        return (
            f"generated {self.generated:,}, stored {self.stored:,}: lost {self.lost}, "
            f"duplicated {self.duplicated}, wrong outcome {self.wrong_outcome}, "
            f"unexpected {self.unexpected}"
        )


def read_record(path: Path) -> dict[str, str]:
    record = {}
    for line in path.read_text().splitlines():
        uniqueid, outcome = line.split("\t")
        record[uniqueid] = outcome
    return record


def stored_calls(url: str, pbx: str) -> list[tuple[str, str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(Call.uniqueid, Call.outcome).where(Call.pbx == pbx))
            return [(u, getattr(o, "value", str(o))) for u, o in rows]
    finally:
        engine.dispose()


def ivr_runs(url: str) -> dict[str, int]:
    """IVR runs recorded, by look-up status (a run is not recorded while the database is
    down: the call itself is unharmed, the IVR says so in its log)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(IvrRun.lookup_status, func.count()).group_by(IvrRun.lookup_status)
            )
            return {str(status): int(count) for status, count in rows}
    finally:
        engine.dispose()


class CommitLatency:
    """Polls ``call_events`` for new rows: the delay from an event's ``Timestamp`` (when the
    PBX sent it) to the poll that first sees it committed, in whole milliseconds (the poll
    interval, 50 ms, is part of what it measures: on average half of it)."""

    def __init__(self, url: str, pbx: str) -> None:
        self.url, self.pbx = url, pbx
        self.histogram: Counter[int] = Counter()
        self.errors = 0
        self._last_id = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="commit-latency", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        engine = make_engine(self.url, pool_pre_ping=True)
        query = (
            select(CallEvent.id, CallEvent.event_time)
            .where(CallEvent.pbx == self.pbx)
            .order_by(CallEvent.id)
            .limit(50_000)
        )
        while not self._stop.wait(POLL_SECONDS):
            try:
                with engine.connect() as connection:
                    rows = connection.execute(query.where(CallEvent.id > self._last_id)).all()
            except SQLAlchemyError:
                self.errors += 1  # the database is down (a fault): the rows wait for us
                continue
            now = datetime.now(UTC)
            for row_id, when in rows:
                self._last_id = max(self._last_id, row_id)
                self.histogram[max(0, int((now - when).total_seconds() * 1000))] += 1
        engine.dispose()

    @property
    def seen(self) -> int:
        return sum(self.histogram.values())

    def percentile(self, fraction: float) -> int:
        total = self.seen
        if total == 0:
            return 0
        rank = fraction * total
        running = 0
        for ms in sorted(self.histogram):
            running += self.histogram[ms]
            if running >= rank:
                return ms
        return max(self.histogram)

    def quiet_for(self, seconds: float) -> bool:
        """No new rows for ``seconds``: the listener has written all it will."""
        before = self._last_id
        time.sleep(seconds)
        return self._last_id == before
