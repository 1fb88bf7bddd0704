"""Logging in without letting a login storm exhaust the server or tell which usernames exist.

- Each check of a password costs an argon2 hash (64 MiB, ~0.2 s): they run on a small pool of
  their own (HASH_THREADS), never on the request threads and never inside a database session,
  and at most MAX_WAITING wait for it; beyond that a login is refused at once with 429.
- Per client address: at most IN_FLIGHT logins at a time and ``max_failures_per_address``
  failures a minute.
- Per username, existing or not: the same failure count and lockout (table login_failures), the
  same dummy-hash cost and the same answers, so nothing says whether a user exists.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from callcenter.db import AnyRow
from callcenter.errors import TooManyRequests
from callcenter.models import Base, LoginFailure, User
from callcenter.users.security import dummy_hash, verify_password

HASH_THREADS = 2  # argon2 takes 64 MiB each: memory stays bounded in a storm
MAX_WAITING = 32
IN_FLIGHT = 4
ADDRESS_WINDOW_S = 60.0
MAX_ADDRESSES = 10_000
USERNAME_KEY_LENGTH = 64

LOCKED_MESSAGE = "too many failed logins: try again later"
BUSY_MESSAGE = "too many logins at once: try again shortly"

_FAILURES = Base.metadata.tables[LoginFailure.__tablename__]
_USERS = Base.metadata.tables[User.__tablename__]


class LoginGuard:
    """Per-address limits and the password-hashing pool of one API process."""

    def __init__(self, *, max_failures_per_address: int) -> None:
        self._max_failures = max_failures_per_address
        self._executor = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="login")
        # Ready before the first login, so an unknown name's first check costs what any costs.
        self._executor.submit(dummy_hash)
        self._lock = threading.Lock()
        self._waiting = 0
        self._in_flight: dict[str, int] = {}
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    @contextmanager
    def attempt(self, address: str) -> Iterator[None]:
        """One login from ``address``; TooManyRequests when that address is over its limits."""
        now = time.monotonic()
        with self._lock:
            failures = self._recent_failures(address, now)
            if len(failures) >= self._max_failures:
                wait = math.ceil(failures[0] + ADDRESS_WINDOW_S - now)
                raise TooManyRequests(LOCKED_MESSAGE, retry_after=max(1, wait))
            if self._in_flight.get(address, 0) >= IN_FLIGHT:
                raise TooManyRequests(BUSY_MESSAGE, retry_after=1)
            self._in_flight[address] = self._in_flight.get(address, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._in_flight[address] - 1
                if left:
                    self._in_flight[address] = left
                else:
                    del self._in_flight[address]

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent_failures(address, now).append(now)
            self._failures.move_to_end(address)
            while len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """The argon2 check on the hashing pool (the dummy hash when ``password_hash`` is None)."""
        with self._lock:
            if self._waiting >= MAX_WAITING:
                raise TooManyRequests(BUSY_MESSAGE, retry_after=1)
            self._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._executor, verify_password, password_hash, password
            )
        finally:
            with self._lock:
                self._waiting -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _recent_failures(self, address: str, now: float) -> deque[float]:
        failures = self._failures.get(address)
        if failures is None:
            failures = self._failures[address] = deque()
        while failures and failures[0] <= now - ADDRESS_WINDOW_S:
            failures.popleft()
        return failures


def username_key(username: str) -> str:
    return username[:USERNAME_KEY_LENGTH]


def subject(engine: Engine, *, username: str, now: datetime) -> tuple[AnyRow | None, int]:
    """The user of that name (or None) and how many seconds its name stays locked (0: not)."""
    with engine.connect() as connection:
        user = connection.execute(
            select(
                _USERS.c.id,
                _USERS.c.password_hash,
                _USERS.c.active,
                _USERS.c.role,
                _USERS.c.token_generation,
            ).where(_USERS.c.username == username)
        ).one_or_none()
        locked_until = connection.scalar(
            select(_FAILURES.c.locked_until).where(_FAILURES.c.username == username_key(username))
        )
    if locked_until is None or locked_until <= now:
        return user, 0
    return user, math.ceil((locked_until - now).total_seconds())


def record_failure(
    connection: Connection, *, username: str, max_failures: int, lockout: timedelta, now: datetime
) -> None:
    """Count a failed login for ``username``; lock the name after ``max_failures`` in a row."""
    key = username_key(username)
    dialect_insert: Any = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    connection.execute(
        dialect_insert(_FAILURES)
        .values(username=key, failures=0, locked_until=None, last_failed_at=now)
        .on_conflict_do_nothing(index_elements=["username"])
    )
    row = connection.execute(
        select(_FAILURES.c.failures, _FAILURES.c.last_failed_at)
        .where(_FAILURES.c.username == key)
        .with_for_update()
    ).one()
    # Failures further apart than a lockout do not add up.
    failures = row.failures + 1 if row.last_failed_at > now - lockout else 1
    values: dict[str, Any] = {"failures": failures, "last_failed_at": now}
    if failures >= max_failures:
        values.update(failures=0, locked_until=now + lockout)
    connection.execute(update(_FAILURES).where(_FAILURES.c.username == key).values(**values))


def record_success(connection: Connection, *, username: str) -> None:
    connection.execute(delete(_FAILURES).where(_FAILURES.c.username == username_key(username)))
