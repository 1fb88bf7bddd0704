"""`callcenter caller export|erase NUMBER`: all that is kept, or none of it that names the
caller; erasure is refused while the caller's incident is open; everything is recorded."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from callcenter import cli
from callcenter.audit.models import AuditEntry
from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Assignment
from callcenter.ivr.models import IvrRun
from callcenter.models import Call, Caller, CallEvent
from callcenter.phone import normalise
from callcenter.privacy.pseudonyms import pseudonym
from callcenter.settings import Settings, get_settings
from tests.privacy.helpers import NEW_NUMBER, OLD_NUMBER, seed_caller
from tests.records import seed_records

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Run]:
    """`callcenter ...` on the test database: (exit code, stdout, stderr)."""
    monkeypatch.setenv("CALLCENTER_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("CALLCENTER_TOKEN_SECRET", settings.token_secret.get_secret_value())
    monkeypatch.setenv("CALLCENTER_ENVIRONMENT", "test")
    get_settings.cache_clear()

    def _run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    yield _run
    get_settings.cache_clear()


def entries(factory: sessionmaker[Session], action: str) -> list[AuditEntry]:
    with factory() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_export_gives_everything_kept_about_a_number_and_is_recorded(
    run: Run, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        call_id = seed_records(session, settings, caller=OLD_NUMBER)
        seed_caller(session, NEW_NUMBER, when=session.get_one(Call, call_id).started_at, pranks=1)

    code, out, _ = run("caller", "export", "+62 812-3456-7890")
    assert code == 0
    data = json.loads(out)
    assert [c["caller_e164"] for c in data["calls"]] == ["+6281234567890"]
    assert data["caller"]["number"] == "+6281234567890"
    assert data["incidents"][0]["summary"] == "rumah terbakar"
    assert data["classification_history"][0]["to"] == "emergency"
    assert NEW_NUMBER[1:] not in out  # nobody else's data
    (entry,) = entries(session_factory, "caller.export")
    secret = settings.token_secret.get_secret_value()
    assert entry.entity_key == pseudonym(normalise(OLD_NUMBER).key, secret)
    assert entry.actor_name.startswith("command line")
    assert OLD_NUMBER[1:] not in json.dumps(entry.details)

    code, _, err = run("caller", "export", "0811000000")
    assert code == 1
    assert "nothing is kept" in err


def test_erase_is_refused_while_an_incident_is_open_then_erases_every_trace(
    run: Run, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        call_id = seed_records(session, settings, caller=OLD_NUMBER)
        started = session.get_one(Call, call_id).started_at
        prank_ids = seed_caller(session, OLD_NUMBER.replace("0812", "0813"), when=started, pranks=1)
        session.add(
            IvrRun(
                pbx="test-pbx",
                uniqueid="ivr-1",
                caller_id_raw=OLD_NUMBER,
                caller_e164="+6281234567890",
                outcome="completed",
                started_at=started,
                prompts_failed=0,
                warning_played=False,
            )
        )
        session.add(
            CallEvent(
                pbx="test-pbx",
                dedup_key="1:erase",
                call_id=call_id,
                name="Newchannel",
                event_time=started,
                received_at=started,
                raw=f"CallerIDNum: {OLD_NUMBER}",
            )
        )
    code, _, err = run("caller", "erase", OLD_NUMBER)
    assert code == 2
    assert "still open" in err
    (refusal,) = entries(session_factory, "caller.erase.refused")
    assert refusal.details["open_incidents"]
    with session_factory() as session:
        assert session.get_one(Call, call_id).caller_e164 == "+6281234567890"

    with session_factory.begin() as session:
        session.execute(update(Assignment).values(status=FollowUp.resolved))
    code, out, _ = run("caller", "erase", OLD_NUMBER)
    assert code == 0, out
    assert "1 calls" in out
    with session_factory() as session:
        call = session.get_one(Call, call_id)
        assert call.caller_e164 == refusal.entity_key
        assert call.caller_id_raw == refusal.entity_key
        assert call.classification is not None  # the record of the emergency stays
        caller = session.scalars(select(Caller).where(Caller.id == call.caller_key_id)).one()
        assert (caller.number_key, caller.raw_last, caller.call_count) == (
            refusal.entity_key,
            "",
            1,
        )
        assert session.scalars(select(CallEvent).where(CallEvent.call_id == call_id)).all() == []
        assert set(session.scalars(select(IvrRun.caller_e164))) == {
            refusal.entity_key,
            "+6281334567890",
        }
        other = session.get_one(Call, prank_ids[0])
        assert other.caller_e164 == "+6281334567890"  # another caller, untouched
    (erased,) = entries(session_factory, "caller.erase")
    assert erased.entity_key == refusal.entity_key
    assert erased.details["raw_events_deleted"] == 1


def test_an_export_of_calls_is_recorded_before_it_is_written(
    run: Run, session_factory: sessionmaker[Session]
) -> None:
    code, _, _ = run("export", "calls", "--format", "csv", "--since", "2025-01-01")
    assert code == 0
    (entry,) = entries(session_factory, "calls.export")
    assert entry.details == {"format": "csv", "since": "2025-01-01T00:00:00+00:00", "pbx": None}
    assert entry.actor_name.startswith("command line")
