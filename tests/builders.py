"""Deterministic builders for test data, with keyword defaults. They flush, never commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from callcenter.models import Call, Caller, Classification, Outcome, Role, User
from callcenter.phone import normalise

_seq = count(1)
PASSWORD = "correct horse battery"
# Test users get a light argon2id hash: verifying one costs ~1 ms instead of the production
# parameters' ~0.2 CPU s, and the suite logs in hundreds of times. Verification reads the
# parameters from the hash itself, so the login code runs unchanged; users made by the API and
# the CLI still get production hashes (PRODUCTION_HASH, checked in tests/users/).
_PASSWORD_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
PRODUCTION_HASH = "$argon2id$v=19$m=65536,t=3,p=4$"  # argon2-cffi defaults (RFC 9106)


def make_user(
    session: Session,
    *,
    username: str | None = None,
    role: Role = Role.operator,
    active: bool = True,
    queue_member_name: str | None = None,
    queue_member_interface: str | None = None,
) -> User:
    user = User(
        username=username or f"user{next(_seq)}",
        password_hash=_PASSWORD_HASH,
        role=role,
        display_name="",
        active=active,
        queue_member_name=queue_member_name,
        queue_member_interface=queue_member_interface,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return user


def make_call(
    session: Session,
    *,
    caller: str = "081234567890",
    caller_name: str | None = None,
    started_at: datetime | None = None,
    outcome: Outcome = Outcome.answered,
    classification: Classification | None = None,
    operator: str | None = "Operator Andi",
    wait_seconds: int | None = 3,
    talk_seconds: int | None = 21,
    pbx: str = "test-pbx",
    caller_key_id: int | None = None,
    private: bool = False,
) -> Call:
    n = next(_seq)
    # A minute apart, and always on 1 May (09:00-21:00 WITA) however many calls earlier tests
    # made: tests read that day back.
    default_start = datetime(2025, 5, 1, 1, 0, tzinfo=UTC) + timedelta(minutes=n % 720)
    started = started_at or default_start
    number = normalise(caller)
    answered = outcome in (Outcome.answered, Outcome.connected)
    call = Call(
        pbx=pbx,
        uniqueid=f"1700000000.{n}",
        linkedid=f"1700000000.{n}",
        channel=f"PJSIP/trunk-{n:08x}",
        caller_id_raw=caller,
        caller_id_name=caller_name,
        caller_e164=number.e164,
        caller_id_status=number.status,
        caller_id_private=private,
        caller_key_id=caller_key_id,
        outcome=outcome,
        started_at=started,
        queued_at=started + timedelta(seconds=6),
        answered_at=started + timedelta(seconds=6 + (wait_seconds or 0)) if answered else None,
        ended_at=None if not outcome.is_final else started + timedelta(seconds=60),
        queue="emergency-112",
        operator=operator if answered else None,
        wait_seconds=wait_seconds,
        # The IVR took 6 s before the queue: answer time counts it.
        answer_seconds=6 + (wait_seconds or 0) if answered else None,
        talk_seconds=talk_seconds if answered else None,
        classification=classification,
        telephony_state={},
    )
    session.add(call)
    session.flush()
    return call


def make_caller(session: Session, *, number: str = "081234567890", **counts: int) -> Caller:
    """The caller row for ``number`` (as the AMI listener keeps it), with optional counts."""
    normalised = normalise(number)
    caller = Caller(
        number_key=normalised.key,
        e164=normalised.e164,
        raw_last=number,
        status=normalised.status,
        line_type=normalised.line_type,
        region=normalised.region,
        call_count=counts.get("call_count", 0),
        emergency_count=counts.get("emergency_count", 0),
        prank_count=counts.get("prank_count", 0),
        non_emergency_count=counts.get("non_emergency_count", 0),
    )
    session.add(caller)
    session.flush()
    return caller
