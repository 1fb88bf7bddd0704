"""Request-scoped dependencies: the session dependency owns commit and rollback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from callcenter.api.writes import WriteThreads
from callcenter.settings import Settings

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


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's unit of work: committed when the route succeeds, rolled back otherwise.

    A session connects at its first statement, so creating it here needs no worker thread; only
    the commit (or rollback) runs in one. Every thread hop costs: routes are sync, in threads.
    """
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    session = factory()
    try:
        yield session
    except BaseException:
        await run_in_threadpool(session.close)  # closing rolls back
        raise
    await run_in_threadpool(_commit_and_close, session)


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
