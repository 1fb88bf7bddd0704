"""Group commit on the write threads: what arrives together commits together, and one request's
failure is never another's. Real SQLite file and real PostgreSQL."""

import asyncio
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from callcenter.api.writes import WriteThreads
from callcenter.errors import Conflict
from tests.builders import make_call

Work = Callable[[Connection], str]


def set_note(call_id: int, note: str) -> Work:
    def work(connection: Connection) -> str:
        connection.execute(
            text("UPDATE calls SET classification_note = :note WHERE id = :id"),
            {"note": note, "id": call_id},
        )
        return note

    return work


def held_until(gate: threading.Event, work: Work, started: threading.Event) -> Work:
    """``work``, after the gate opens: keeps the writer busy while the next jobs queue up."""

    def held(connection: Connection) -> str:
        started.set()
        assert gate.wait(10)
        return work(connection)

    return held


async def start_held(
    writes: WriteThreads, gate: threading.Event, first: Work
) -> asyncio.Future[str]:
    """``first`` on the writer, which is busy with it (alone in its batch) when this returns."""
    started = threading.Event()
    job = asyncio.ensure_future(writes.run(held_until(gate, first, started)))
    assert await asyncio.to_thread(started.wait, 10)
    return job


def refused(call_id: int) -> Work:
    """Writes, then refuses, as a stale classification does: its write must not stand."""

    def work(connection: Connection) -> str:
        set_note(call_id, "refused")(connection)
        raise Conflict("stale")

    return work


def count_commits(engine: Engine) -> list[int]:
    commits = [0]

    def counted(_connection: Connection) -> None:
        commits[0] += 1

    event.listen(engine, "commit", counted)
    return commits


async def queue_behind_a_held_job(
    writes: WriteThreads, gate: threading.Event, first: Work, rest: list[Work]
) -> list[str | BaseException]:
    """Runs ``first`` (held at the gate), queues ``rest`` behind it, then opens the gate."""
    jobs = [await start_held(writes, gate, first)]
    jobs += [asyncio.ensure_future(writes.run(work)) for work in rest]
    await asyncio.sleep(0.05)  # every job is on the queue (run() queues before it awaits)
    gate.set()
    return await asyncio.gather(*jobs, return_exceptions=True)


def notes(session_factory: sessionmaker[Session], ids: list[int]) -> list[str | None]:
    with session_factory() as session:
        rows = session.execute(text("SELECT id, classification_note FROM calls ORDER BY id")).all()
    by_id = {row.id: row.classification_note for row in rows}
    return [by_id[call_id] for call_id in ids]


def make_calls(session_factory: sessionmaker[Session], count: int) -> list[int]:
    with session_factory.begin() as session:
        return [make_call(session).id for _ in range(count)]


def test_jobs_that_queue_up_commit_in_one_transaction(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    ids = make_calls(session_factory, 6)
    commits = count_commits(engine)
    writes = WriteThreads(engine, threads=1)
    gate = threading.Event()
    first, *rest = [set_note(call_id, f"note {n}") for n, call_id in enumerate(ids)]

    results = asyncio.run(queue_behind_a_held_job(writes, gate, first, rest))
    writes.close()

    assert results == [f"note {n}" for n in range(6)]
    assert commits[0] == 2  # the held job alone, then the five that queued behind it together
    assert notes(session_factory, ids) == [f"note {n}" for n in range(6)]


def test_a_failing_job_fails_alone_and_its_writes_do_not_stand(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    ids = make_calls(session_factory, 4)
    writes = WriteThreads(engine, threads=1)
    gate = threading.Event()
    first = set_note(ids[0], "first")
    rest = [set_note(ids[1], "before"), refused(ids[2]), set_note(ids[3], "after")]

    results = asyncio.run(queue_behind_a_held_job(writes, gate, first, rest))
    writes.close()

    assert results[:2] == ["first", "before"]
    assert isinstance(results[2], Conflict)
    assert results[3] == "after"
    assert notes(session_factory, ids) == ["first", "before", None, "after"]


def test_a_failed_commit_reaches_every_job_of_the_batch_that_did_not_commit(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    ids = make_calls(session_factory, 3)
    writes = WriteThreads(engine, threads=1)
    gate = threading.Event()

    def refuse(_connection: Connection) -> None:
        if gate.is_set():
            raise RuntimeError("the database refused the commit")

    event.listen(engine, "commit", refuse)
    first, *rest = [set_note(call_id, "lost") for call_id in ids]
    results = asyncio.run(queue_behind_a_held_job(writes, gate, first, rest))
    event.remove(engine, "commit", refuse)
    writes.close()

    assert all(isinstance(result, RuntimeError) for result in results)
    assert notes(session_factory, ids) == [None, None, None]


@pytest.mark.parametrize("threads", [1, 2])
def test_close_finishes_the_queued_work_then_stops(
    engine: Engine, session_factory: sessionmaker[Session], threads: int
) -> None:
    ids = make_calls(session_factory, 4)
    writes = WriteThreads(engine, threads=threads)
    gate = threading.Event()

    async def close_while_queued() -> list[str | BaseException]:
        first, *rest = [set_note(call_id, "kept") for call_id in ids]
        jobs = [await start_held(writes, gate, first)]
        jobs += [asyncio.ensure_future(writes.run(work)) for work in rest]
        await asyncio.sleep(0.05)
        closing = threading.Thread(target=writes.close)
        closing.start()
        gate.set()
        results = await asyncio.gather(*jobs, return_exceptions=True)
        await asyncio.to_thread(closing.join, 10)
        return results

    assert asyncio.run(close_while_queued()) == ["kept"] * 4
    assert not any(thread.is_alive() for thread in writes._threads)
    assert notes(session_factory, ids) == ["kept"] * 4
