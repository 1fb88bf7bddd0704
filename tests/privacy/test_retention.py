"""`callcenter retention`: numbers past their period become pseudonyms, raw frames go, and the
statistics read the same before and after (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from callcenter.audit.models import AuditEntry
from callcenter.db import utcnow
from callcenter.ivr.models import IvrRun
from callcenter.models import Call, Caller, CallEvent, Role
from callcenter.privacy.retention import apply_retention
from callcenter.settings import RetentionSettings, Settings
from tests.conftest import LoginFn
from tests.privacy.helpers import NEW_NUMBER, OLD_NUMBER, seed_caller

RETENTION = RetentionSettings(raw_events_days=7, caller_numbers_days=30)


def stats(client: TestClient, headers: dict[str, str], span: dict[str, str]) -> dict[str, Any]:
    summary = client.get("/api/v1/stats/summary", params=span, headers=headers)
    callers = client.get("/api/v1/stats/callers", params=span, headers=headers)
    assert summary.status_code == callers.status_code == 200, summary.text + callers.text
    return {"summary": summary.json(), "callers": callers.json()}


def test_numbers_past_their_period_become_pseudonyms_and_statistics_stay_exact(
    client: TestClient,
    login: LoginFn,
    settings: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    now = utcnow()
    with session_factory.begin() as session:
        old_ids = seed_caller(session, OLD_NUMBER, when=now - timedelta(days=60), pranks=3)
        new_ids = seed_caller(session, NEW_NUMBER, when=now - timedelta(days=1), pranks=2)
    admin = login(Role.admin)
    span = {"from": str((now - timedelta(days=90)).date()), "to": str(now.date())}
    before = stats(client, admin, span)
    assert {c["caller"] for c in before["callers"]["callers"]} >= {"+6281234567890"}

    settings = settings.model_copy(update={"retention": RETENTION})
    report = apply_retention(session_factory, settings, now=now, actor_name="test")

    assert report.raw_events_deleted == 3
    assert report.calls_pseudonymised == 3
    assert report.ivr_runs_pseudonymised == 3
    assert report.callers_pseudonymised == 1
    assert report.prank_rollup_rows_pseudonymised >= 1
    with session_factory() as session:
        old = session.scalars(select(Call).where(Call.id.in_(old_ids))).all()
        assert {c.caller_e164 for c in old} == {old[0].caller_id_raw}  # one pseudonym
        assert old[0].caller_e164 is not None
        assert old[0].caller_e164.startswith("anon:")
        assert {c.caller_id_name for c in old} == {""}
        new = session.scalars(select(Call).where(Call.id.in_(new_ids))).all()
        assert {c.caller_e164 for c in new} == {"+6281299990000"}
        assert {c.caller_id_name for c in new} == {"Budi Santoso"}
        events = session.scalars(select(CallEvent.call_id)).all()
        assert sorted(e for e in events if e is not None) == sorted(new_ids)
        assert len(events) == len(new_ids)
        runs = session.scalars(
            select(IvrRun.caller_e164).where(IvrRun.started_at < now - timedelta(days=30))
        ).all()
        assert set(runs) == {old[0].caller_e164}
        keys = set(session.scalars(select(Caller.number_key)))
        assert keys == {old[0].caller_e164, "+6281299990000"}
        text = " ".join(
            str(row) for row in session.execute(select(Call.caller_id_raw, Call.caller_e164))
        )
        assert "81234567890" not in text
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "retention.run")
        ).one()
        assert entry.details["calls_pseudonymised"] == 3

    after = stats(client, admin, span)
    assert after["summary"] == before["summary"]
    ranking = [(c["caller"], c["pranks"]) for c in after["callers"]["callers"]]
    assert sorted(n for _, n in ranking) == sorted(
        c["pranks"] for c in before["callers"]["callers"]
    )
    assert (old[0].caller_e164, 3) in ranking

    # A second run finds nothing left to do.
    again = apply_retention(session_factory, settings, now=now, actor_name="test")
    assert again.calls_pseudonymised == again.raw_events_deleted == 0
    assert again.callers_pseudonymised == again.ivr_runs_pseudonymised == 0


def test_numbers_are_never_kept_shorter_than_the_prank_window(settings: Settings) -> None:
    with pytest.raises(ValueError, match="prank_window_days"):
        Settings.model_validate({**settings.model_dump(), "retention": {"caller_numbers_days": 7}})


def test_the_audit_log_refuses_updates_and_deletes(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        session.add(AuditEntry(actor_name="x", action="test.entry", entity="test", details={}))
    for statement in ("UPDATE audit_log SET action = 'changed'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), session_factory.begin() as session:
            session.execute(text(statement))
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 1
