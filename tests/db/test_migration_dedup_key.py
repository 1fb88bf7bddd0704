"""Migrations 0007 and 0008: events stored with an old key get the key the listener computes
when the migration is written, so a replay after the upgrade still stores nothing twice; and
back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, text

from callcenter.ami.fake_server import Recording
from callcenter.ami.frames import Frame, read_frame
from callcenter.ami.identity import EventKeys
from callcenter.db import make_engine
from callcenter.db.migrate import alembic_config, upgrade
from tests.conftest import TRACES


def trace_events(limit: int = 40) -> list[Frame]:
    """Trace 01's events as Asterisk sends them with timestampevents = yes, and one without."""
    stamped = Recording.load(TRACES / "01-answered", stamp=True).frames
    blocks = [c.data for c in stamped if c.data.startswith(b"Event: ")][:limit]
    blocks.append(b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted")
    frames = []
    for block in blocks:
        frame, _junk = read_frame(block.rstrip(b"\r\n"))
        assert frame is not None
        frames.append(frame)
    return frames


def key_0007(frame: Frame) -> str:
    """The key migration 0007 gave: the event's Timestamp, ":", the digest of its bytes."""
    stamp = frame.get("Timestamp")
    return f"{stamp}:{frame.digest}" if stamp else frame.digest


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

    upgrade(engine, "0007_dedup_key_timestamp_first")
    assert keys(engine) == [key_0007(f) for f in frames]
    assert sum(":" in key for key in keys(engine)) == len(frames) - 1  # all but FullyBooted

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0006_call_events_no_fk")
    assert keys(engine) == [f.digest for f in frames]
    engine.dispose()


def test_0008_keys_are_the_listeners_with_or_without_timestamps(unmigrated_database: str) -> None:
    """Rows stored under 0007's keys (with Timestamp) get the keys the listener computes now,
    numbered as it numbers repeats; so the same trace replayed without timestamps adds none."""
    frames = trace_events(limit=1000)
    engine = make_engine(unmigrated_database)
    upgrade(engine, "0007_dedup_key_timestamp_first")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO call_events (pbx, dedup_key, name, event_time, received_at, raw) "
                "VALUES ('pbx', :key, :name, :t, :t, :raw)"
            ),
            [
                {"key": key_0007(f), "name": f.name, "t": "2026-11-28 01:00:00", "raw": f.text}
                for f in frames
            ],
        )

    upgrade(engine)

    stream = EventKeys()
    assert keys(engine) == [stream.key_of(f.dedup_key) for f in frames]
    unstamped = EventKeys()
    without = [unstamped.key_of(unstamp(f).dedup_key) for f in frames]
    assert keys(engine) == without
    assert any("#" in key for key in without)  # the trace repeats a VarSet: kept twice
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0007_dedup_key_timestamp_first")
    assert keys(engine) == [key_0007(f) for f in frames]
    engine.dispose()


def unstamp(frame: Frame) -> Frame:
    """The frame as Asterisk sends it with timestampevents = no."""
    block = b"\r\n".join(
        line for line in frame.raw.split(b"\r\n") if not line.startswith(b"Timestamp:")
    )
    unstamped, _junk = read_frame(block)
    assert unstamped is not None
    return unstamped
