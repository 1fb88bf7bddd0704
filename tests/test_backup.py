"""`callcenter backup` / `restore`: taken while the listener writes, restored into a fresh
database, every call, event, classification and incident is there (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from callcenter import backup, cli
from callcenter.ami.fake_server import Chunk, FakeAsterisk, Recording
from callcenter.db import make_engine, make_sessionmaker
from callcenter.models import Call, CallEvent
from callcenter.settings import Settings, get_settings
from tests.ami.helpers import linked_events, make_listener
from tests.conftest import TRACES, new_postgres_database
from tests.records import seed_records, table_rows


@contextmanager
def fresh_database(database_url: str, tmp_path: Path, name: str) -> Iterator[str]:
    """An empty database of the same kind, as on a new server after a dead disk."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / name}.db"
        return
    with new_postgres_database("cc_restore") as url:
        yield url


def spread_over(seconds: float) -> list[Chunk]:
    """The combined-calls trace, its frames spread evenly over ``seconds`` of streaming."""
    frames = Recording.load(TRACES / "13-combined-concurrent", stamp=True).frames
    step = seconds / len(frames)
    return [Chunk(frame.data, i * step) for i, frame in enumerate(frames)]


def rows_of(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = make_engine(url)
    try:
        return table_rows(engine)
    finally:
        engine.dispose()


def count(url: str, model: type[Call] | type[CallEvent]) -> int:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        n = session.scalar(select(func.count()).select_from(model)) or 0
    engine.dispose()
    return n


@pytest.mark.timeout(300)
def test_a_backup_taken_while_the_listener_writes_restores_everything(
    database_url: str,
    session_factory: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
) -> None:
    with session_factory.begin() as session:
        seed_records(session, settings)
    backups: list[tuple[Path, int, int]] = []  # file, events stored before, and after it
    suffix = Path(backup.backup_name(database_url)).suffix
    # Long enough for a whole pg_dump to fit inside the stream on a loaded machine (one took
    # 3.5 s at load average 10), and each backup begins only once events are being stored.
    with FakeAsterisk([spread_over(8.0)], realtime=True) as fake:
        listener, store = make_listener(database_url, fake.port, tmp_path / "spool")
        listener.stop_at_eof = True

        def back_up_meanwhile() -> None:
            n = 0
            while not listener.counters.stored_events and not fake.finished.is_set():
                time.sleep(0.01)
            while not fake.finished.is_set():
                before = listener.counters.stored_events
                target = tmp_path / "backups" / f"during-{n}{suffix}"
                backup.backup(database_url, target)
                backups.append((target, before, listener.counters.stored_events))
                n += 1

        listener.start()
        thread = threading.Thread(target=back_up_meanwhile)
        thread.start()
        thread.join(120)
        assert listener.wait(60), "the listener did not drain"
        store.engine.dispose()
    stored = listener.counters.stored_events
    during = [b for b in backups if b[1] > 0 and b[2] < stored]
    assert during, f"no backup was taken while the listener wrote: {backups}"

    # Restored from the middle of the stream: a consistent store, with all that was committed
    # before the backup began, and every event's call there.
    middle, before, _ = during[len(during) // 2]
    with fresh_database(database_url, tmp_path, "middle") as target:
        backup.restore(target, middle)
        assert count(target, CallEvent) >= before
        assert linked_events(target)[1] == 0
        restored, source = rows_of(target), rows_of(database_url)
        for name in ("users", "classification_changes", "incidents", "incident_assignments"):
            assert restored[name] == source[name], name
        assert set(restored["call_events"]) <= set(source["call_events"])

    # After the stream: the restore holds exactly what the source holds, table by table.
    final = backup.backup(database_url, tmp_path / "backups" / backup.backup_name(database_url))
    with fresh_database(database_url, tmp_path, "final") as target:
        backup.restore(target, final)
        source, restored = rows_of(database_url), rows_of(target)
        assert restored == source
        assert len(restored["calls"]) > 1
        assert len(restored["call_events"]) == stored
        assert restored["incidents"]
        assert restored["incident_assignment_changes"]


def test_restore_refuses_a_database_that_holds_data_and_changes_nothing(
    database_url: str, session_factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    with session_factory.begin() as session:
        seed_records(session, settings)
    taken = backup.backup(database_url, tmp_path / backup.backup_name(database_url))
    with session_factory.begin() as session:
        session.execute(text("UPDATE incidents SET summary = 'changed after the backup'"))
    before = table_rows(session_factory.kw["bind"])

    with pytest.raises(backup.RestoreRefused, match="not empty"):
        backup.restore(database_url, taken)
    assert table_rows(session_factory.kw["bind"]) == before

    other = tmp_path / ("x.pgdump" if database_url.startswith("sqlite") else "x.sqlite3")
    other.write_bytes(b"not a backup")
    with pytest.raises(backup.RestoreRefused, match="is not a backup of"):
        backup.restore(database_url, other)


def test_a_damaged_sqlite_backup_is_refused(tmp_path: Path) -> None:
    damaged = tmp_path / "callcenter-20260101T000000Z.sqlite3"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    target = tmp_path / "fresh.db"
    with pytest.raises(backup.BackupError):
        backup.restore(f"sqlite:///{target}", damaged)


def test_the_backup_command_keeps_the_newest_and_restore_brings_them_back(
    database_url: str,
    session_factory: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with session_factory.begin() as session:
        call_id = seed_records(session, settings)
    folder = tmp_path / "backups"
    folder.mkdir()
    suffix = Path(backup.backup_name(database_url)).suffix
    for stamp in ("20250101T000000Z", "20250102T000000Z"):
        (folder / f"callcenter-{stamp}{suffix}").write_bytes(b"old")
    monkeypatch.setenv("CALLCENTER_DATABASE_URL", database_url)
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        assert cli.main(["backup", "--dir", str(folder), "--keep", "2"]) == 0
        written = Path(capsys.readouterr().out.splitlines()[0])
        assert sorted(p.name for p in folder.iterdir()) == [
            "callcenter-20250102T000000Z" + suffix,
            written.name,
        ]
        with fresh_database(database_url, tmp_path, "cli") as target:
            monkeypatch.setenv("CALLCENTER_DATABASE_URL", target)
            get_settings.cache_clear()
            assert cli.main(["restore", str(written)]) == 0
            engine = make_engine(target)
            with make_sessionmaker(engine)() as session:
                assert session.get(Call, call_id) is not None
            engine.dispose()
            with pytest.raises(SystemExit, match="not empty"):
                cli.main(["restore", str(written)])
    finally:
        get_settings.cache_clear()
