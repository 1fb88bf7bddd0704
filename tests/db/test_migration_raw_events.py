"""Migration 0005: stored events move from headers JSON to their text, and back, losing nothing."""

from __future__ import annotations

import json

from alembic import command
from sqlalchemy import Engine, inspect, text

from callcenter.db import make_engine
from callcenter.db.migrate import alembic_config, upgrade

HEADERS = [
    ["Event", "NewCallerid"],
    ["CallerIDName", "José Amáral"],  # read as Latin-1 off the wire
    ["ChanVariable", "A=1"],
    ["ChanVariable", "B=2"],  # repeated keys stay, in order
    ["Data", "a: b"],
    ["Empty", ""],
]
TEXT = "Event: NewCallerid\r\nCallerIDName: José Amáral\r\nChanVariable: A=1\r\n" + (
    "ChanVariable: B=2\r\nData: a: b\r\nEmpty: "
)


def test_events_keep_every_header_through_upgrade_and_downgrade(unmigrated_database: str) -> None:
    engine = make_engine(unmigrated_database)
    upgrade(engine, "0004_incidents")
    with engine.begin() as connection:
        for n in range(3):
            connection.execute(
                text(
                    "INSERT INTO call_events (pbx, dedup_key, name, event_time, received_at, "
                    "headers) VALUES ('pbx', :key, 'NewCallerid', :t, :t, :headers)"
                ),
                {"key": f"k{n}", "t": "2026-11-28 01:00:00", "headers": json.dumps(HEADERS)},
            )
    upgrade(engine)
    with engine.connect() as connection:
        raws = connection.execute(text("SELECT raw FROM call_events ORDER BY id")).scalars().all()
    assert raws == [TEXT] * 3
    assert "ix_call_events_pbx_uniqueid" not in _indexes(engine)

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004_incidents")
    with engine.connect() as connection:
        back = connection.execute(text("SELECT headers FROM call_events")).scalars().all()
    assert "ix_call_events_pbx_uniqueid" in _indexes(engine)
    engine.dispose()
    assert [json.loads(h) if isinstance(h, str) else h for h in back] == [HEADERS] * 3


def _indexes(engine: Engine) -> set[str]:
    return {str(index["name"]) for index in inspect(engine).get_indexes("call_events")}
