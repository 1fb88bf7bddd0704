"""A few dedicated threads for the API's short write transactions (the classification hot path).

Starlette runs sync work on a shared pool of 40 threads. For short write transactions that
costs more than the SQL: each request's thread contends for the GIL with the event loop and
with the other threads, and SQLite lets one writer in at a time anyway. Measured with
`make bench PARTS=classification` on the 2-core machine: 429 req/s on the shared pool, 672 on
one dedicated thread (SQLite); PostgreSQL, which takes concurrent writers, does best on four.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection, Engine

T = TypeVar("T")

SQLITE_THREADS = 1
OTHER_THREADS = 4


class WriteThreads:
    """Runs a function in one transaction (committed, or rolled back if it raises)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        threads = SQLITE_THREADS if engine.dialect.name == "sqlite" else OTHER_THREADS
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="db-write")

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work`` on a write thread; the commit is done when this returns."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._in_transaction, work
        )

    def _in_transaction(self, work: Callable[[Connection], T]) -> T:
        with self._engine.begin() as connection:
            return work(connection)

    def close(self) -> None:
        """Waits for the transactions under way, so none is cut off at shutdown."""
        self._pool.shutdown(wait=True)
