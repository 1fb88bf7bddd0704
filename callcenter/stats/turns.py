"""Statistics readers take turns on the event loop, so an operator's tag never queues behind them.

Every reader waiting for a rollup refresh wakes when it ends. Eighty of them then finishing
their answers and parsing their next requests kept the API's one event loop busy for a couple
of hundred milliseconds, and an operator's tag, whose few steps run on that same loop, waited
behind all of them (issue 18: tag p99 180-550 ms with 80 readers on PostgreSQL).

Here a statistics request holds one of a few turns (TURNS) while it works on the loop, and sets
its turn aside while it only waits (for a refresh, for a computation it shares with other
readers). However many readers there are, the loop holds the work of at most TURNS of them at
once; the others wait in line at no cost, and readers served by one refresh still share it.
Requests that are not statistics (tags, the live board, incidents) never take a turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

# Statistics requests working on the event loop at once. Two compute on their own threads
# (stats.shared.THREADS); a few more can be finishing their responses meanwhile.
TURNS = 4
# The paths of statistics readers: the statistics API and the supervisor's pages.
READER_PATHS = ("/api/v1/stats/", "/console/supervisor")
_SCOPE_KEY = "callcenter.stats.turn"


class Turn:
    """One request's turn: held from its start to its end, set aside while it waits."""

    def __init__(self, turns: asyncio.Semaphore) -> None:
        self._turns = turns
        self._held = False

    async def take(self) -> None:
        await self._turns.acquire()
        self._held = True

    def give_back(self) -> None:
        if self._held:
            self._held = False
            self._turns.release()

    @asynccontextmanager
    async def set_aside(self) -> AsyncIterator[None]:
        """Waiting costs the loop nothing: another reader may work meanwhile."""
        self.give_back()
        try:
            yield
        finally:
            await self.take()


class ReaderTurns:
    """ASGI middleware: a request under ``READER_PATHS`` runs only while it holds a turn."""

    def __init__(self, app: ASGIApp, *, turns: int = TURNS) -> None:
        self.app = app
        self._turns = asyncio.Semaphore(turns)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(READER_PATHS):
            await self.app(scope, receive, send)
            return
        turn = Turn(self._turns)
        scope[_SCOPE_KEY] = turn
        await turn.take()
        try:
            await self.app(scope, receive, send)
        finally:
            turn.give_back()


@asynccontextmanager
async def waiting(request: Request) -> AsyncIterator[None]:
    """Around an await that only waits: the request's turn, if it has one, is set aside."""
    turn: Turn | None = request.scope.get(_SCOPE_KEY)
    if turn is None:
        yield
        return
    async with turn.set_aside():
        yield
