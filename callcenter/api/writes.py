"""A few dedicated threads for the API's short write transactions (the classification hot path).

Requests that arrive while a transaction is under way are committed together in the next one
(group commit): one BEGIN, one COMMIT (and on PostgreSQL one connection check and one WAL
flush) for the lot instead of one each. Nothing waits for a batch to fill: a thread takes what
is queued the moment it is free, so a lone request is never delayed. Each request still gets
its answer only after its transaction has committed.

If anything in a batch fails, the batch is rolled back and each of its requests runs again,
alone, in a transaction of its own: one request's error (a 409, a 404, a database error) is
never another's. The work functions must therefore be safe to run again after a rollback,
which a function that only touches the database is.

Why threads of our own: Starlette runs sync work on a shared pool of 40 threads, where each
request's thread contends for the GIL with the event loop and the others, and SQLite lets one
writer in at a time anyway. `make bench PARTS=classification` measures the effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine

T = TypeVar("T")

SQLITE_THREADS = 1  # SQLite takes one writer at a time
OTHER_THREADS = 2  # one collects the next batch while the other commits
WRITE_CONNECTIONS = max(SQLITE_THREADS, OTHER_THREADS)  # the pool of the app's write engine
MAX_BATCH = 64


@dataclass(slots=True)
class _Job(Generic[T]):
    work: Callable[[Connection], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop


class WriteThreads:
    """Runs functions in committed transactions on dedicated threads, in batches."""

    def __init__(self, engine: Engine, *, threads: int | None = None) -> None:
        self._engine = engine
        if threads is None:
            threads = SQLITE_THREADS if engine.dialect.name == "sqlite" else OTHER_THREADS
        self._jobs: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"db-write-{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work`` on a write thread; its transaction has committed when this returns."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(work, future, loop))
        return await future

    def close(self) -> None:
        """Finishes the queued work, so no request is cut off at shutdown, then stops."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()

    def _serve(self) -> None:
        while (first := self._jobs.get()) is not None:
            batch: list[_Job[Any]] = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._run_batch(batch)
            if stop:
                return

    def _run_batch(self, batch: list[_Job[Any]]) -> None:
        if len(batch) > 1:
            try:
                with self._engine.begin() as connection:
                    results = [job.work(connection) for job in batch]
            except Exception:  # rolled back: each job runs again alone, below
                pass
            else:
                _settle(batch, [(result, None) for result in results])
                return
        _settle(batch, [self._run_alone(job) for job in batch])

    def _run_alone(self, job: _Job[Any]) -> tuple[Any, BaseException | None]:
        try:
            with self._engine.begin() as connection:
                result = job.work(connection)
        except Exception as exc:  # the request's own error, raised where it awaits
            return None, exc
        return result, None


def _settle(batch: list[_Job[Any]], outcomes: list[tuple[Any, BaseException | None]]) -> None:
    """Hands each job's result or error to its event loop: one wake-up per loop, not per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, Any]]] = {}
    for job, (result, error) in zip(batch, outcomes, strict=True):
        by_loop.setdefault(job.loop, []).append((job.future, result, error))
    for loop, settled in by_loop.items():
        # A loop that has closed raises RuntimeError: nobody is waiting there any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, settled)


def _resolve(settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in settled:
        if future.done():  # the request was cancelled (client gone); the work stands
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
