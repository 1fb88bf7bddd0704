"""SQLite writers take turns on a lock, from their first write to the end: threads and processes."""

import fcntl
import multiprocessing
import os
from pathlib import Path
from typing import Any

from sqlalchemy import text

from callcenter.db import make_engine, make_sessionmaker
from callcenter.db.sqlite_writes import _lock_for


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


def _hold_a_write(url: str, holding: Any, release: Any) -> None:
    """In another process: a write transaction, kept open until told to commit."""
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE users SET active = active"))
        holding.set()
        release.wait(30)
    engine.dispose()


def _try_lock(path: Path) -> bool:
    """Whether the cross-process write lock is free (taken and given back at once)."""
    fd = os.open(f"{path.resolve()}-writelock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_other_processes_wait_from_the_first_write_until_commit(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "db.sqlite"
    path.write_bytes(sqlite_template.read_bytes())
    spawn = multiprocessing.get_context("spawn")
    holding, release = spawn.Event(), spawn.Event()
    writer = spawn.Process(target=_hold_a_write, args=(f"sqlite:///{path}", holding, release))
    writer.start()
    try:
        assert holding.wait(30)
        assert not _try_lock(path)
    finally:
        release.set()
        writer.join(30)
    assert writer.exitcode == 0
    assert _try_lock(path)


def test_a_forked_child_does_not_share_its_parents_lock(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """The FastAGI server forks per call: a child must queue behind its parent's writer."""
    path = tmp_path / "db.sqlite"
    path.write_bytes(sqlite_template.read_bytes())
    engine = make_engine(f"sqlite:///{path}")
    lock = _lock_for(str(path.resolve()))
    with engine.begin() as connection:
        connection.execute(text("UPDATE users SET active = active"))
        assert lock.locked()
        pid = os.fork()
        if pid == 0:  # the child: its lock is its own, and the parent's writer holds the file
            child = _lock_for(str(path.resolve()))
            os._exit(0 if not child.locked() and not _try_lock(path) else 1)
        _, status = os.waitpid(pid, 0)
    engine.dispose()
    assert os.waitstatus_to_exitcode(status) == 0
