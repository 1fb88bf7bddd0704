"""Engines and sessions. Engines are built by whoever runs (app lifespan, CLI), never at import."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy import DateTime, Engine, Row, create_engine, event
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from callcenter.db.sqlite_writes import serialise_writes
from callcenter.settings import ConfigError

# A result row of any shape, for functions that read it by column name.
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: times are stored in UTC, give a tzinfo")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # 64 MiB of pages per connection, not SQLite's 2 MiB: the index pages the AMI listener's
    # inserts and updates touch stay in memory as call_events grows, instead of being read
    # back in (whole listener on a 600,000-event file: about a tenth quicker).
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout. A malformed URL
    or a driver that is not installed is a ConfigError (the URL shown without its password)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "the database URL (CALLCENTER_DATABASE_URL) is not a URL like "
            "postgresql+psycopg://user@host/db or sqlite:///path/file.db"
        ) from None
    try:
        return _make_engine(url, parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        shown = parsed.render_as_string(hide_password=True)
        raise ConfigError(f"database URL {shown}: its driver is not installed ({exc})") from None


def _make_engine(url: str, parsed: URL, **kwargs: Any) -> Engine:
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        if parsed.database and parsed.database != ":memory:":
            serialise_writes(engine, str(Path(parsed.database).resolve()))
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session
