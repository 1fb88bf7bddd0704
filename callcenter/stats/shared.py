"""One computation, and one serialised body, for every statistics reader asking the same question
after the same rollup refresh.

Supervisors' dashboards poll: after each refresh every reader of the year's summary wants the
same figures. Computed once per reader, eighty readers cost the API process eighty times the
CPU of one (a year's summary takes it some 15-25 ms) and, on two cores, crowd the GIL that an
operator's tag needs for its few hand-offs between the event loop and its write thread.

Freshness is what ``RollupRefresher.fresh()`` gives each reader: the refresh that served it
began after it asked, so any computation that began after that refresh had ended includes every
commit made before the request. That holds for a computation started by another reader served
by the same refresh or a later one; so a reader joins the latest computation of its question
when that computation's refresh is at least its own, and otherwise starts one.

The computations run on a small pool of their own (THREADS), one thread per distinct question
at a time at most, so that however many readers wait, at most THREADS threads compute at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

# Statistics computations running at once in one process. Each holds the GIL most of its time:
# more would only take turns with the event loop and the write threads (operators' tags), and
# hold pooled connections. Two, so that one long question (an hourly series over a year) does
# not hold up every other.
THREADS = 2


@dataclass(frozen=True, slots=True)
class Answer:
    """A response body as served, shared by every reader of one computation."""

    body: bytes
    media_type: str
    headers: tuple[tuple[str, str], ...] = ()


Compute = Callable[[Session], Answer]


class SharedReads:
    """``await answer(question, generation, compute)``: ``compute`` runs once for all readers of
    ``question`` served by refresh ``generation`` (or a later one) who ask meanwhile."""

    def __init__(self, factory: sessionmaker[Session], *, threads: int = THREADS) -> None:
        self._factory = factory
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="stats-read")
        # Per question: the refresh generation its latest computation was started for, and it.
        self._latest: dict[Hashable, tuple[int, asyncio.Future[Answer]]] = {}
        self.computations = 0  # started so far (for tests and metrics)

    async def answer(self, question: Hashable, generation: int, compute: Compute) -> Answer:
        found = self._latest.get(question)
        if found is not None and found[0] >= generation:
            future = found[1]
        else:
            future = asyncio.get_running_loop().run_in_executor(self._executor, self._run, compute)
            self.computations += 1
            self._forget_older_than(generation)
            entry = (generation, future)
            self._latest[question] = entry
            future.add_done_callback(lambda done: self._settled(question, entry, done))
        # Shielded: a reader that leaves (client gone) does not cancel the others' computation.
        return await asyncio.shield(future)

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _run(self, compute: Compute) -> Answer:
        with self._factory() as session:
            return compute(session)

    def _forget_older_than(self, generation: int) -> None:
        """Finished answers no reader served by ``generation`` may use: memory stays at about
        one answer per question asked since the last refresh."""
        stale = [
            question
            for question, (started_for, future) in self._latest.items()
            if started_for < generation and future.done()
        ]
        for question in stale:
            del self._latest[question]

    def _settled(
        self,
        question: Hashable,
        entry: tuple[int, asyncio.Future[Answer]],
        future: asyncio.Future[Answer],
    ) -> None:
        # A failure is handed to the readers already waiting, never to a later one: it asks
        # again. (Reading the exception also marks it retrieved when nobody waits any more.)
        if (future.cancelled() or future.exception() is not None) and self._latest.get(
            question
        ) is entry:
            del self._latest[question]
