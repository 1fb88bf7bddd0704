"""Helpers for the IVR tests: the IVR's own processes, the seeded database, the recorded runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.db import make_engine, utcnow
from callcenter.ivr.models import IvrRun
from callcenter.models import Call, CallerIdStatus, Classification, Outcome
from tests.ivr.fake_asterisk import Scenario

CALLCENTER = str(Path(sys.executable).parent / "callcenter")


def ivr_environ(database_url: str, tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "CALLCENTER_DATABASE_URL": database_url,
            "CALLCENTER_DATA_DIR": str(tmp_path / "data"),
            # The replies come instantly here; the deadline is tested on its own.
            "CALLCENTER_IVR__LOOKUP_DEADLINE_MS": "30000",
            "CALLCENTER_LOG_LEVEL": "INFO",
        }
    )
    env.update(overrides)
    return env


@pytest.fixture
def environ(database_url: str, tmp_path: Path) -> dict[str, str]:
    return ivr_environ(database_url, tmp_path)


@dataclass
class ProcessRun:
    sent: list[str]
    returncode: int
    stderr: str


def run_process_agi(scenario: Scenario, environ: dict[str, str]) -> ProcessRun:
    """`callcenter agi` as Asterisk runs it: a child process on two pipes, SIGHUP on hangup."""
    process = subprocess.Popen(
        [CALLCENTER, "agi", "081234567890"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    def write(data: bytes) -> None:
        with contextlib.suppress(BrokenPipeError):  # the IVR may close first
            stdin.write(data)
            stdin.flush()

    try:
        sent = scenario.converse(stdout.readline, write, lambda: process.send_signal(signal.SIGHUP))
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return ProcessRun(sent, process.returncode, stderr.decode("utf-8", "replace"))


def seed_pranks(database_url: str, e164: str, *, count: int, days_ago: float = 1) -> None:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            for _ in range(count):
                uid = uuid.uuid4().hex[:20]
                session.add(
                    Call(
                        pbx="ttu-pbx-1",
                        uniqueid=uid,
                        linkedid=uid,
                        caller_id_raw="0" + e164.removeprefix("+62"),
                        caller_e164=e164,
                        caller_id_status=CallerIdStatus.valid,
                        outcome=Outcome.answered,
                        started_at=utcnow() - timedelta(days=days_ago),
                        classification=Classification.prank,
                    )
                )
    finally:
        engine.dispose()


def ivr_runs(database_url: str) -> dict[str, IvrRun]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return {run.uniqueid: run for run in session.scalars(select(IvrRun))}
    finally:
        engine.dispose()
