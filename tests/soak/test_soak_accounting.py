"""The soak's building blocks on real data: generated calls through the real listener, the
logs the simulated PBX writes through `callcenter reconcile`, and the accounting of both.

A whole soak takes minutes (`make soak`); these take seconds, on both databases.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, update

from benchmarks.soak.account import Accounting, stored_calls
from benchmarks.soak.calls import Played, load_templates, play
from callcenter.ami.fake_server import Chunk, coalesce
from callcenter.commands.reconcile import reconcile
from callcenter.db import make_engine
from callcenter.demo.feed import stamped
from callcenter.models import Call
from tests.ami.helpers import PBX, replay


def chunks(played: Played, share: float = 1.0) -> list[Chunk]:
    """The first ``share`` of a play's events, as the PBX sends them."""
    events = played.events[: round(len(played.events) * share)]
    return [Chunk(stamped(data, at) + b"\r\n\r\n") for at, data in events]


def record(plays: list[Played]) -> dict[str, str]:
    return {u: o for p in plays for u, o in p.outcomes.items()}


def write_logs(plays: list[Played], folder: Path) -> dict[str, Path]:
    paths = {name: folder / name for name in ("queue_log", "Master.csv", "cel.jsonl")}
    for name, path in paths.items():
        lines = [
            line
            for p in plays
            for line in {"queue_log": p.queue_log, "Master.csv": p.cdr, "cel.jsonl": p.cel}[name]
        ]
        path.write_bytes(b"".join(line + b"\n" for line in lines))
    return paths


def reconcile_from_logs(database_url: str, plays: list[Played], folder: Path, since: float) -> None:
    """``callcenter reconcile`` from the queue_log, CDR and CEL the simulator wrote."""
    logs = write_logs(plays, folder)
    reconcile(
        settings_pbx=PBX,
        database_url=database_url,
        region="ID",
        queue_log=logs["queue_log"],
        cdr=logs["Master.csv"],
        cel=logs["cel.jsonl"],
        since=datetime.fromtimestamp(since, UTC),
        context="from-pstn",
        extensions=["112"],
        cdr_timezone="UTC",
    )


def test_calls_played_whole_are_each_stored_once_with_their_outcome(
    database_url: str, tmp_path: Path
) -> None:
    start = time.time() - 600
    plays = [play(t, start + 60 * n) for n, t in enumerate(load_templates())]
    expected = record(plays)
    assert sorted(set(expected.values())) == [
        "abandoned_in_ivr",
        "abandoned_in_queue",
        "answered",
        "unanswered",
    ]

    replay(database_url, [coalesce([c for p in plays for c in chunks(p)])], tmp_path / "spool")

    stored = Accounting.of(expected, stored_calls(database_url, PBX))
    assert stored == Accounting(
        generated=6, stored=6, lost=0, duplicated=0, wrong_outcome=0, unexpected=0
    )
    assert stored.ok
    # And the accounting sees a call gone and a call wrong.
    lost, wrong = sorted(expected)[:2]
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(delete(Call).where(Call.uniqueid == lost))
        connection.execute(update(Call).where(Call.uniqueid == wrong).values(outcome="failed"))
    engine.dispose()
    broken = Accounting.of(expected, stored_calls(database_url, PBX))
    assert (broken.lost, broken.wrong_outcome, broken.ok) == (1, 1, False)
    assert broken.wrong == [(wrong, expected[wrong], "failed")]


def test_what_a_gap_hid_is_filled_from_the_logs_the_simulator_wrote(
    database_url: str, tmp_path: Path
) -> None:
    """Calls cut short on the AMI stream, and one never seen there: the listener alone has
    them open or not at all; reconcile with the PBX's queue_log, CDR and CEL completes them."""
    start = time.time() - 600
    templates = load_templates()
    plays = [play(t, start + 60 * n) for n, t in enumerate([*templates, templates[0]])]
    seen, unseen = plays[:-1], plays[-1]
    stream = [c for p in seen for c in chunks(p, share=0.3)]

    replay(database_url, [coalesce(stream)], tmp_path / "spool")

    expected = record(plays)
    alone = Accounting.of(expected, stored_calls(database_url, PBX))
    assert alone.lost >= len(unseen.outcomes)  # and a call whose start was cut off
    assert alone.wrong_outcome > 0  # calls still open: queued, in the IVR
    reconcile_from_logs(database_url, plays, tmp_path, since=start - 60)
    after = Accounting.of(expected, stored_calls(database_url, PBX))
    assert after.wrong == []
    assert after == Accounting(
        generated=7, stored=7, lost=0, duplicated=0, wrong_outcome=0, unexpected=0
    )
