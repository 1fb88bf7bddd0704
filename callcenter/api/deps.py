"""Request-scoped dependencies: the session dependency owns commit and rollback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session, sessionmaker

from callcenter.api.writes import WriteThreads
from callcenter.settings import Settings
from callcenter.stats.refresher import RollupRefresher

# Commits run on threads of their own, never on the shared pool of request threads: on SQLite a
# request that wrote holds the process's write lock until its commit, and the writers queued
# behind it may fill that pool, so a commit waiting there for a thread would never come.
# A commit never waits on that lock itself, so these threads always make progress.
COMMIT_THREADS = 4


def commit_executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=COMMIT_THREADS, thread_name_prefix="db-commit")


# The largest id, offset or version a request may carry: JavaScript's largest safe integer (a
# generated client loses precision past it; our BIGINT ids never get there). Larger is a 422
# the OpenAPI document states, never an overflow in the driver.
MAX_INT = 2**53 - 1
Id = Annotated[int, Path(ge=1, le=MAX_INT)]


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_write_threads(request: Request) -> WriteThreads:
    threads: WriteThreads = request.app.state.write_threads
    return threads


async def get_rollup_refresher(request: Request) -> RollupRefresher:
    refresher: RollupRefresher = request.app.state.rollup_refresher
    return refresher


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's unit of work: committed when the route succeeds, rolled back otherwise.

    A session connects at its first statement, so creating it here needs no worker thread; only
    the commit (or rollback) runs in one, of the commit threads (see COMMIT_THREADS).
    """
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    executor: ThreadPoolExecutor = request.app.state.commit_executor
    loop = asyncio.get_running_loop()
    session = factory()
    try:
        yield session
    except BaseException:
        if session.in_transaction():
            await loop.run_in_executor(executor, session.close)  # closing rolls back
        else:
            session.close()
        raise
    if session.in_transaction():
        await loop.run_in_executor(executor, _commit_and_close, session)
    else:
        # Nothing began, or it was committed already (statistics readers): no I/O, no hop.
        session.close()


async def release_connection(request: Request, session: Session) -> None:
    """Ends the session's (read) transaction, so its pooled connection goes back before the
    request waits for something else; the session connects again at its next statement."""
    executor: ThreadPoolExecutor = request.app.state.commit_executor
    await asyncio.get_running_loop().run_in_executor(executor, session.commit)


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    finally:
        session.close()


# scope="function": the commit happens before the response is sent, so a client never sees
# success (or a new ETag) for a write that is not yet committed, or whose commit failed.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
# For a hot route that runs its whole unit of work on a write thread (see api.writes).
WriteThreadsDep = Annotated[WriteThreads, Depends(get_write_threads)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
RefresherDep = Annotated[RollupRefresher, Depends(get_rollup_refresher)]
