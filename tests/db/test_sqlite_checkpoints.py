"""WAL checkpoints on their own thread: the writer's commits stop checkpointing, nothing is lost."""

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from callcenter.db import make_engine
from callcenter.db.sqlite_checkpoints import WalCheckpointer


def _autocheckpoint(engine_url: str) -> int:
    engine = make_engine(engine_url)
    with engine.connect() as connection:
        value = connection.execute(text("PRAGMA wal_autocheckpoint")).scalar_one()
    engine.dispose()
    return int(value)


def test_writer_commits_leave_checkpoints_to_the_thread_and_it_copies_everything_back(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "db.sqlite"
    path.write_bytes(sqlite_template.read_bytes())
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    checkpointer = WalCheckpointer(engine, interval=0.01)
    checkpointer.start()
    for batch in range(20):
        with engine.begin() as connection:
            assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 0
            connection.execute(text("CREATE TABLE IF NOT EXISTS t (n integer, pad text)"))
            connection.execute(
                text("INSERT INTO t VALUES (:n, :pad)"),
                [{"n": batch * 1000 + i, "pad": "x" * 500} for i in range(1000)],
            )
    checkpointer.stop()
    # The database file alone, without its WAL (the pooled connection still keeps the WAL
    # open): every commit must have been copied into it.
    alone = tmp_path / "alone.sqlite"
    alone.write_bytes(path.read_bytes())
    assert Path(f"{path}-wal").stat().st_size > 0
    engine.dispose()

    assert checkpointer.checkpoints > 1
    assert _autocheckpoint(url) == 1000  # other connections keep SQLite's default
    file_alone = sqlite3.connect(alone)
    assert file_alone.execute("SELECT count(*), max(n) FROM t").fetchone() == (20000, 19999)
    file_alone.close()


def test_refuses_what_is_not_an_sqlite_file() -> None:
    with pytest.raises(ValueError, match="SQLite database file"):
        WalCheckpointer(make_engine("sqlite://"))
