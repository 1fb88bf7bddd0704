"""Backups of the store, taken while it runs, and their restore into a fresh database.

SQLite: the online backup API copies a consistent snapshot page by page while the listener
keeps writing (WAL: readers never block the writer), into ``*.partial``, checked with
``PRAGMA integrity_check`` and only then renamed. PostgreSQL: ``pg_dump --format=custom`` (one
consistent snapshot of the database) and ``pg_restore --single-transaction``. The database's
password goes to pg_dump through its environment, never its command line.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import URL, make_url

from callcenter.db import make_engine, migrate
from callcenter.errors import CallCenterError, Conflict

log = logging.getLogger(__name__)

SQLITE_SUFFIX = ".sqlite3"
POSTGRES_SUFFIX = ".pgdump"


class BackupError(CallCenterError):
    status_code = 500
    code = "backup_failed"


class RestoreRefused(Conflict):
    code = "restore_refused"


def backup_name(url: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    suffix = SQLITE_SUFFIX if _is_sqlite(make_url(url)) else POSTGRES_SUFFIX
    return f"callcenter-{stamp}{suffix}"


def backup(url: str, target: Path) -> Path:
    """Write a backup of the database at ``url`` to ``target`` (a file; never half-written)."""
    parsed = make_url(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if _is_sqlite(parsed):
            _sqlite_backup(_sqlite_path(parsed), partial)
        else:
            _run(["pg_dump", "--format=custom", "--no-owner", f"--file={partial}"], parsed)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    log.info("backup written: %s (%d bytes)", target, target.stat().st_size)
    return target


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups in ``folder``; return what was deleted."""
    found = sorted(
        p for p in folder.glob("callcenter-*") if p.suffix in (SQLITE_SUFFIX, POSTGRES_SUFFIX)
    )
    old = found[: max(len(found) - keep, 0)]
    for path in old:
        path.unlink()
    return old


def restore(url: str, source: Path, *, force: bool = False) -> None:
    """Restore ``source`` into the database at ``url``, then migrate it to this version's head.

    The database must be empty (a fresh one, as after a dead disk) unless ``force``: then what it
    holds is replaced. Stop the services that write to it first.
    """
    if not source.is_file():
        raise RestoreRefused(f"no backup file at {source}")
    parsed = make_url(url)
    sqlite = _is_sqlite(parsed)
    if sqlite != (source.suffix == SQLITE_SUFFIX):
        kind = "SQLite" if sqlite else "PostgreSQL"
        raise RestoreRefused(f"{source.name} is not a backup of a {kind} database")
    if not force and _has_tables(url):
        raise RestoreRefused(
            "the target database is not empty: restore into a fresh one, or pass --force to "
            "replace what it holds (stop the services first)"
        )
    if sqlite:
        _check_sqlite(source)
        _sqlite_restore(source, _sqlite_path(parsed))
    else:
        args = ["pg_restore", "--no-owner", "--single-transaction", "--exit-on-error"]
        if force:
            args += ["--clean", "--if-exists"]
        _run([*args, str(source)], parsed, database_flag=True)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)  # a backup from an older version comes up to this one's schema
    finally:
        engine.dispose()
    log.info("restored %s", source)


# -- SQLite -----------------------------------------------------------------------------------


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _sqlite_backup(source: Path, target: Path) -> None:
    if not source.exists():
        raise BackupError(f"no database file at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        # All pages in one step: one consistent snapshot, and in WAL mode the listener's
        # commits go on meanwhile (they land in the WAL, after the snapshot).
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        dst.close()
        src.close()
    _check_sqlite(target)


def _check_sqlite(path: Path) -> None:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = connection.execute("PRAGMA integrity_check").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path.name} is not a readable SQLite database ({exc})") from exc
    if result is None or result[0] != "ok":
        raise BackupError(f"{path.name} failed its integrity check: {result}")


def _sqlite_restore(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=WAL")
    finally:
        dst.close()
        src.close()


def _has_tables(url: str) -> bool:
    engine = make_engine(url)
    try:
        return bool(inspect(engine).get_table_names())
    finally:
        engine.dispose()


# -- PostgreSQL -------------------------------------------------------------------------------


def libpq_environment(url: URL) -> dict[str, str]:
    """PG* variables for pg_dump/pg_restore from a SQLAlchemy URL (password included)."""
    env: dict[str, str] = {}
    host = url.query.get("host") or url.host
    pairs = {
        "PGHOST": host if isinstance(host, str) else None,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password if isinstance(url.password, str) else None,
        "PGDATABASE": url.database,
    }
    for key, value in pairs.items():
        if value:
            env[key] = value
    return env


def _run(args: list[str], url: URL, *, database_flag: bool = False) -> None:
    if shutil.which(args[0]) is None:
        raise BackupError(f"{args[0]} is not installed: apt-get install postgresql-client")
    env = {**os.environ, **libpq_environment(url)}
    if database_flag:
        args = [args[0], f"--dbname={url.database}", *args[1:]]
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{args[0]} failed: {result.stderr.strip()[-2000:]}")
