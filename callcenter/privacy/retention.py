"""`callcenter retention`: personal data past its period (config [retention]) is deleted or
pseudonymised; the statistics stay exact (docs/privacy.md).

- raw AMI frames older than ``raw_events_days`` (or than ``caller_numbers_days``, when shorter:
  they hold the numbers too) are deleted; the call rows derived from them stay;
- calls and IVR runs older than ``caller_numbers_days`` get the caller's pseudonym instead of the
  number, and no caller name; callers not seen for that long, and the prank rankings of those
  days, too. One caller keeps one pseudonym, so counts per caller do not change.

Each step commits on its own, so a large first run never holds the listener's writes for long,
and a second run finds nothing left to do. The run is recorded in the audit log.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from callcenter.audit import service as audit
from callcenter.db import transaction
from callcenter.ivr.models import IvrRun
from callcenter.localtime import local_day
from callcenter.models import Call, Caller, CallEvent
from callcenter.privacy import pseudonyms
from callcenter.settings import Settings


@dataclass(slots=True)
class RetentionReport:
    raw_events_deleted: int = 0
    calls_pseudonymised: int = 0
    ivr_runs_pseudonymised: int = 0
    callers_pseudonymised: int = 0
    prank_rollup_rows_pseudonymised: int = 0
    recording_references_removed: int = 0  # none are stored yet


def apply_retention(
    factory: sessionmaker[Session], settings: Settings, *, now: datetime, actor_name: str
) -> RetentionReport:
    r = settings.retention
    secret = settings.token_secret.get_secret_value()
    report = RetentionReport()
    raw_cutoff = now - timedelta(days=min(r.raw_events_days, r.caller_numbers_days))
    numbers_cutoff = now - timedelta(days=r.caller_numbers_days)
    with transaction(factory) as session:
        report.raw_events_deleted = pseudonyms.delete_raw_events(
            session, CallEvent.received_at < raw_cutoff
        )
    with transaction(factory) as session:
        report.calls_pseudonymised = pseudonyms.calls(
            session, Call.started_at < numbers_cutoff, secret
        )
    with transaction(factory) as session:
        report.ivr_runs_pseudonymised = pseudonyms.ivr_runs(
            session, IvrRun.started_at < numbers_cutoff, secret
        )
    with transaction(factory) as session:
        report.callers_pseudonymised = pseudonyms.callers(
            session, Caller.last_seen_at < numbers_cutoff, secret
        )
    # The rankings: whole days before the cutoff, and whole months before the cutoff's month
    # (that month's row follows within a month, once it is wholly past).
    day = local_day(numbers_cutoff, settings.tz)
    with transaction(factory) as session:
        report.prank_rollup_rows_pseudonymised = pseudonyms.prank_rollups(
            session, secret, before_day=day, before_month=day // 100
        )
        audit.record(
            session,
            action="retention.run",
            entity="retention",
            actor_name=actor_name,
            details={
                **asdict(report),
                "raw_events_before": raw_cutoff.isoformat(),
                "caller_numbers_before": numbers_cutoff.isoformat(),
            },
        )
    return report
