"""Bulk-generated call histories for the statistics benchmark (PostgreSQL and SQLite).

Shares as in the regency's recap: 77% answered, 12% abandoned in the IVR, 9% in the queue;
of answered calls 4.9% emergencies and 56% pranks, which come from a skewed pool of numbers so
that some callers prank again and again. Calls are spread evenly over 24 months.
"""

from __future__ import annotations

import math
import random
import sqlite3
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

START = datetime(2023, 9, 30, 16, 0, tzinfo=UTC)  # 1 October 2023, 00:00 WITA
END = datetime(2025, 9, 30, 16, 0, tzinfo=UTC)  # 1 October 2025, 00:00 WITA
SPAN = (END - START).total_seconds()
CATEGORIES = ["fire", "medical", "crime", "traffic_accident", "disaster", "other"]
PRANK_POOL = 50_000
OTHER_POOL = 2_000_000

PG_CALLS = """
INSERT INTO calls (pbx, uniqueid, linkedid, channel, caller_id_raw, caller_id_name, caller_e164,
  caller_id_status, outcome, started_at, answered_at, ended_at, queue, operator, wait_seconds,
  answer_seconds, talk_seconds, gap, telephony_state, classification, classification_reason,
  version, created_at, updated_at)
SELECT 'bench', 'b.' || g, 'b.' || g, '', caller, '', caller, 'valid', outcome, started_at,
  CASE WHEN outcome = 'answered' THEN started_at + make_interval(secs => 8 + wait) END,
  started_at + interval '90 seconds', 'emergency-112',
  CASE WHEN outcome = 'answered' THEN 'Operator ' || (1 + floor(r4 * 12)::int) END,
  CASE WHEN outcome <> 'abandoned_in_ivr' THEN wait END,
  CASE WHEN outcome = 'answered' THEN 8 + wait END,
  CASE WHEN outcome = 'answered' THEN 10 + floor(r4 * 390)::int END,
  false, '{}', classification, reason, 1, started_at, started_at + interval '5 minutes'
FROM (
  SELECT *,
    CASE classification
      WHEN 'prank' THEN CASE WHEN r3 < 0.22 THEN 'silent_or_ghost_call'
        WHEN r3 < 0.38 THEN 'child_playing' WHEN r3 < 0.42 THEN 'harassment' END
      WHEN 'non_emergency' THEN CASE WHEN r3 < 0.5 THEN 'information_request'
        WHEN r3 < 0.6 THEN 'misdial' WHEN r3 < 0.63 THEN 'complaint' END
    END AS reason,
    CASE WHEN classification = 'prank'
      THEN '+62813' || lpad(floor(:prank_pool * power(r5, 3))::int::text, 7, '0')
      ELSE '+62812' || lpad(floor(:other_pool * r5)::int::text, 7, '0') END AS caller
  FROM (
    SELECT *,
      CASE WHEN outcome = 'answered' THEN CASE WHEN r2 < 0.049 THEN 'emergency'
        WHEN r2 < 0.609 THEN 'prank' ELSE 'non_emergency' END END AS classification
    FROM (
      SELECT g, CAST(:start AS timestamptz) + (g::float8 / :n * :span) * interval '1 second'
          AS started_at,
        CASE WHEN r1 < 0.767 THEN 'answered' WHEN r1 < 0.883 THEN 'abandoned_in_ivr'
          WHEN r1 < 0.973 THEN 'abandoned_in_queue' ELSE 'unanswered' END AS outcome,
        least(floor(-ln(1 - random()) * 7), 300)::int AS wait, r2, r3, r4, r5
      FROM (SELECT g, random() r1, random() r2, random() r3, random() r4, random() r5
            FROM generate_series(:first, :last) g) s
    ) a
  ) b
) c
"""

PG_INCIDENTS = """
INSERT INTO incidents (call_id, call_local_day, category, district, summary, created_by_id,
  created_at, updated_at)
SELECT id, to_char(started_at AT TIME ZONE 'Asia/Makassar', 'YYYYMMDD')::int,
  categories[1 + floor(random() * cardinality(categories))::int],
  districts[1 + floor(random() * cardinality(districts))::int], '', :user_id,
  started_at, started_at
FROM calls, (SELECT CAST(:categories AS text[]) AS categories,
                    CAST(:districts AS text[]) AS districts) AS choices
WHERE classification = 'emergency'
"""

PG_ASSIGNMENTS = """
INSERT INTO incident_assignments (incident_id, agency_id, is_primary, status, status_reason,
  call_local_day, assigned_at, assigned_by_id, status_changed_at, version)
SELECT id, agencies[1 + floor(random() * cardinality(agencies))::int], true,
  CASE WHEN random() < 0.862 THEN 'resolved' ELSE 'not_followed_up' END, NULL,
  call_local_day, created_at, :user_id, created_at + interval '2 hours', 1
FROM incidents, (SELECT CAST(:agencies AS bigint[]) AS agencies) AS choices
"""


def load_postgres(
    connection: Connection, *, n: int, user_id: int, agencies: list[int], districts: list[str]
) -> None:
    """Insert n calls, an incident for each emergency and its primary agency, in SQL."""
    indexes = connection.execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'calls' "
            "AND indexname NOT IN ('pk_calls', 'uq_calls_pbx_uniqueid')"
        )
    ).all()
    for name, _ in indexes:
        connection.execute(text(f'DROP INDEX "{name}"'))
    connection.execute(text("ALTER TABLE calls DROP CONSTRAINT uq_calls_pbx_uniqueid"))
    chunk = 1_000_000
    for first in range(1, n + 1, chunk):
        connection.execute(
            text(PG_CALLS),
            {
                "first": first,
                "last": min(n, first + chunk - 1),
                "n": n,
                "start": START,
                "span": SPAN,
                "prank_pool": PRANK_POOL,
                "other_pool": OTHER_POOL,
            },
        )
    connection.execute(text("SET maintenance_work_mem = '512MB'"))
    connection.execute(
        text("ALTER TABLE calls ADD CONSTRAINT uq_calls_pbx_uniqueid UNIQUE (pbx, uniqueid)")
    )
    for _, definition in indexes:
        connection.execute(text(definition))
    connection.execute(
        text(PG_INCIDENTS),
        {"categories": CATEGORIES, "districts": districts, "user_id": user_id},
    )
    connection.execute(text(PG_ASSIGNMENTS), {"agencies": agencies, "user_id": user_id})
    connection.execute(text("ANALYZE"))


def _pick(rng: random.Random, cuts: list[tuple[float, str | None]]) -> str | None:
    r = rng.random()
    for cut, value in cuts:
        if r < cut:
            return value
    return None


def _stamp(moment: datetime) -> str:
    # SQLAlchemy's SQLite DateTime format: naive UTC, always with microseconds.
    return f"{moment:%Y-%m-%d %H:%M:%S.%f}"


def sqlite_rows(first: int, count: int, n: int) -> list[tuple[object, ...]]:
    """Calls number first .. first+count-1 of n, spread over the whole span."""
    rng = random.Random(first)
    rows: list[tuple[object, ...]] = []
    for g in range(first, first + count):
        started = START + timedelta(seconds=g / n * SPAN)
        outcome = _pick(
            rng,
            [
                (0.767, "answered"),
                (0.883, "abandoned_in_ivr"),
                (0.973, "abandoned_in_queue"),
                (1.0, "unanswered"),
            ],
        )
        answered = outcome == "answered"
        wait = min(int(-math.log(1 - rng.random()) * 7), 300)
        classification = (
            _pick(rng, [(0.049, "emergency"), (0.609, "prank"), (1.0, "non_emergency")])
            if answered
            else None
        )
        reason = None
        if classification == "prank":
            reason = _pick(
                rng,
                [(0.22, "silent_or_ghost_call"), (0.38, "child_playing"), (0.42, "harassment")],
            )
            caller = f"+62813{int(PRANK_POOL * rng.random() ** 3):07d}"
        else:
            if classification == "non_emergency":
                reason = _pick(
                    rng, [(0.5, "information_request"), (0.6, "misdial"), (0.63, "complaint")]
                )
            caller = f"+62812{int(OTHER_POOL * rng.random()):07d}"
        rows.append(
            (
                f"b.{g}",
                f"b.{g}",
                caller,
                caller,
                outcome,
                _stamp(started),
                _stamp(started + timedelta(seconds=8 + wait)) if answered else None,
                f"Operator {1 + rng.randrange(12)}" if answered else None,
                None if outcome == "abandoned_in_ivr" else wait,
                8 + wait if answered else None,
                10 + rng.randrange(390) if answered else None,
                classification,
                reason,
                _stamp(started),
                _stamp(started + timedelta(minutes=5)),
            )
        )
    return rows


SQLITE_CALLS = """
INSERT INTO calls (pbx, uniqueid, linkedid, channel, caller_id_raw, caller_id_name, caller_e164,
  caller_id_status, outcome, started_at, answered_at, queue, operator, wait_seconds,
  answer_seconds, talk_seconds, gap, telephony_state, classification, classification_reason,
  version, created_at, updated_at)
VALUES ('bench', ?, ?, '', ?, '', ?, 'valid', ?, ?, ?, 'emergency-112', ?, ?, ?, ?, 0, '{}', ?, ?,
  1, ?, ?)
"""

SQLITE_INCIDENTS = """
INSERT INTO incidents (call_id, call_local_day, category, district, summary, created_by_id,
  created_at, updated_at)
SELECT id, CAST(strftime('%Y%m%d', started_at, '+8 hours') AS INTEGER),
  'medical', 'Kota Kefamenanu', '', ?, started_at, started_at
FROM calls WHERE classification = 'emergency'
"""

SQLITE_ASSIGNMENTS = """
INSERT INTO incident_assignments (incident_id, agency_id, is_primary, status, call_local_day,
  assigned_at, assigned_by_id, status_changed_at, version)
SELECT id, ? + abs(random()) % ?, 1,
  CASE WHEN abs(random()) % 1000 < 862 THEN 'resolved' ELSE 'not_followed_up' END,
  call_local_day, created_at, ?, created_at, 1
FROM incidents
"""


def load_sqlite(path: str, *, n: int, user_id: int, first_agency: int, agencies: int) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")
        chunk = 100_000
        for first in range(1, n + 1, chunk):
            connection.executemany(SQLITE_CALLS, sqlite_rows(first, min(chunk, n + 1 - first), n))
        connection.execute(SQLITE_INCIDENTS, (user_id,))
        connection.execute(SQLITE_ASSIGNMENTS, (first_agency, agencies, user_id))
        connection.commit()
        connection.execute("ANALYZE")
    finally:
        connection.close()
