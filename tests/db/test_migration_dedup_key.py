"""Migration 0007: events stored with the old key (the digest alone) get the key the listener
now computes, so a replay after the upgrade still stores nothing twice; and back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, text

from callcenter.ami.fake_server import Recording
from callcenter.ami.frames import Frame, read_frame
from callcenter.db import make_engine
from callcenter.db.migrate import alembic_config, upgrade
from tests.conftest import TRACES


def trace_events() -> list[Frame]:
    """Trace 01's events as Asterisk sends them with timestampevents = yes, and one without."""
    stamped = Recording.load(TRACES / "01-answered", stamp=True).frames
    blocks = [c.data for c in stamped if c.data.startswith(b"Event: ")][:40]
    blocks.append(b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted")
    frames = []
    for block in blocks:
        frame, _junk = read_frame(block.rstrip(b"\r\n"))
        assert frame is not None
        frames.append(frame)
    return frames


def keys(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(text("SELECT dedup_key FROM call_events ORDER BY id")).scalars()
        )


def test_old_keys_become_the_keys_the_listener_computes(unmigrated_database: str) -> None:
    frames = trace_events()
    engine = make_engine(unmigrated_database)
    upgrade(engine, "0006_call_events_no_fk")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO call_events (pbx, dedup_key, name, event_time, received_at, raw) "
                "VALUES ('pbx', :key, :name, :t, :t, :raw)"
            ),
            [
                {"key": f.digest, "name": f.name, "t": "2026-11-28 01:00:00", "raw": f.text}
                for f in frames
            ],
        )

    upgrade(engine)
    assert keys(engine) == [f.dedup_key for f in frames]
    assert sum(":" in key for key in keys(engine)) == len(frames) - 1  # all but FullyBooted

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0006_call_events_no_fk")
    assert keys(engine) == [f.digest for f in frames]
    engine.dispose()
