"""Migration 0014: the monthly detail rollup starts equal to the daily rows it sums."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from callcenter.db import make_engine
from callcenter.db.migrate import alembic_config, upgrade

# (local_day, outcome, classification, reason, operator, calls, talk_count, talk_sum, overflowed)
DAYS = [
    (20250531, "answered", "prank", "child_playing", "Operator Andi", 3, 3, 120, 1),
    (20250501, "answered", "prank", "child_playing", "Operator Andi", 2, 1, 40, 0),
    (20250501, "abandoned_in_ivr", "", "", "", 5, 0, 0, 0),
    (20250601, "answered", "prank", "child_playing", "Operator Andi", 7, 7, 700, 2),
]


def test_the_months_are_the_sums_of_their_days(unmigrated_database: str) -> None:
    engine = make_engine(unmigrated_database)
    upgrade(engine, "0008_ami_nothing_lost")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO stats_daily (local_day, outcome, classification, reason, operator, "
                "calls, talk_count, talk_sum, overflowed) "
                "VALUES (:d, :o, :c, :r, :op, :n, :tc, :ts, :ov)"
            ),
            [
                dict(zip(("d", "o", "c", "r", "op", "n", "tc", "ts", "ov"), row, strict=True))
                for row in DAYS
            ],
        )
    upgrade(engine)
    with engine.connect() as connection:
        months = connection.execute(
            text(
                "SELECT month, outcome, classification, reason, operator, calls, talk_count, "
                "talk_sum, overflowed FROM stats_monthly ORDER BY month, outcome"
            )
        ).all()
    assert [tuple(m) for m in months] == [
        (202505, "abandoned_in_ivr", "", "", "", 5, 0, 0, 0),
        (202505, "answered", "prank", "child_playing", "Operator Andi", 5, 4, 160, 1),
        (202506, "answered", "prank", "child_playing", "Operator Andi", 7, 7, 700, 2),
    ]
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008_ami_nothing_lost")
    assert "stats_monthly" not in inspect(engine).get_table_names()
    engine.dispose()
