"""SQLite writers of one process take turns on a lock, from their first write to the end."""

from pathlib import Path

from sqlalchemy import text

from callcenter.db import make_engine, make_sessionmaker
from callcenter.sqlite_writes import _lock_for


def test_the_lock_is_held_from_the_first_write_until_commit_or_rollback(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "db.sqlite"
    path.write_bytes(sqlite_template.read_bytes())
    engine = make_engine(f"sqlite:///{path}")
    lock = _lock_for(str(path.resolve()))
    factory = make_sessionmaker(engine)
    with factory() as session:
        session.execute(text("SELECT count(*) FROM users"))
        assert not lock.locked()  # reads do not take it
        session.execute(text("UPDATE users SET active = active"))
        assert lock.locked()
        session.commit()
        assert not lock.locked()
        session.execute(text("DELETE FROM users"))
        session.rollback()
        assert not lock.locked()
        session.execute(text("DELETE FROM users"))
    assert not lock.locked()  # closed without commit: released when back in the pool
    engine.dispose()
