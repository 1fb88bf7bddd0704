"""The regency's recap as a data set: 4,428 calls May-September 2025, 167 emergencies.

Deterministic (seeded) and bulk-inserted. Of the 167 emergencies, 144 were followed up and
resolved by the agency responsible and 23 were not followed up, spread over seven agencies.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from callcenter.incidents import agencies
from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Agency, Assignment, AssignmentChange, Incident
from callcenter.localtime import local_day
from callcenter.models import Call, Outcome, Role
from callcenter.settings import Settings
from tests.builders import make_user

WITA = ZoneInfo("Asia/Makassar")
MONTHS = {5: 912, 6: 874, 7: 903, 8: 881, 9: 858}  # calls per month, 2025: 4,428
OUTCOMES = {
    Outcome.answered: 3396,
    Outcome.abandoned_in_ivr: 512,
    Outcome.abandoned_in_queue: 398,
    Outcome.unanswered: 122,
}
# Primary agency -> (resolved, not followed up): 144 + 23 = 167.
AGENCY_SPLIT = {
    "polres_ttu": (41, 7),
    "rsud_kefa": (35, 4),
    "damkar_ttu": (19, 3),
    "bpbd_ttu": (15, 3),
    "pln_ulp_kefa": (13, 4),
    "pos_sar_kefa": (12, 1),
    "kodim_1618": (9, 1),
}
PRANKS = 1902
PRANK_REASONS = {"silent_or_ghost_call": 420, "child_playing": 300, "harassment": 80}
NON_EMERGENCY_REASONS = {
    "information_request": 700,
    "misdial": 150,
    "complaint": 60,
    "test_call": 40,
}
OPERATORS = ["Operator Andi", "Operator Maria", "Operator Yoakim", "Operator Sisilia"]
REPEAT_PRANKERS = {"+6281337000001": 31, "+6281337000002": 17, "+6282144000003": 9}
# 23:30 WITA on 31 May is in May; 00:10 WITA on 1 June is in June.
MAY_LAST_CALL = datetime(2025, 5, 31, 23, 30, tzinfo=WITA)
JUNE_FIRST_CALL = datetime(2025, 6, 1, 0, 10, tzinfo=WITA)


@dataclass
class Recap:
    calls: list[dict[str, Any]] = field(default_factory=list)
    primary_status: Counter[tuple[str, FollowUp]] = field(default_factory=Counter)


def _times(rng: random.Random) -> list[datetime]:
    times = [MAY_LAST_CALL, JUNE_FIRST_CALL]
    for month, n in MONTHS.items():
        first = datetime(2025, month, 1, tzinfo=WITA)
        following = datetime(2025 + month // 12, month % 12 + 1, 1, tzinfo=WITA)
        span = int((following - first).total_seconds())
        # The two boundary calls count towards May and June.
        extra = 1 if month in (5, 6) else 0
        times += [first + timedelta(seconds=rng.randrange(span)) for _ in range(n - extra)]
    return sorted(t.astimezone(UTC) for t in times)


def _labels(rng: random.Random) -> list[tuple[str | None, str | None]]:
    """(classification, reason) for each answered call, shuffled."""
    emergencies = sum(r + n for r, n in AGENCY_SPLIT.values())
    labels: list[tuple[str | None, str | None]] = [("emergency", None)] * emergencies
    for reason, n in PRANK_REASONS.items():
        labels += [("prank", reason)] * n
    labels += [("prank", None)] * (PRANKS - sum(PRANK_REASONS.values()))
    for reason, n in NON_EMERGENCY_REASONS.items():
        labels += [("non_emergency", reason)] * n
    labels += [("non_emergency", None)] * (OUTCOMES[Outcome.answered] - len(labels))
    rng.shuffle(labels)
    return labels


def build_calls(rng: random.Random) -> list[dict[str, Any]]:
    outcomes = [o for o, n in OUTCOMES.items() for _ in range(n)]
    rng.shuffle(outcomes)
    labels = iter(_labels(rng))
    prankers = [n for number, k in REPEAT_PRANKERS.items() for n in [number] * k]
    rows = []
    for i, (started, outcome) in enumerate(zip(_times(rng), outcomes, strict=True)):
        answered = outcome is Outcome.answered
        classification, reason = next(labels) if answered else (None, None)
        if classification == "prank" and prankers and rng.random() < 0.2:
            number = prankers.pop()
        else:
            number = f"+62812{rng.randrange(10**7):07d}"
        wait = (
            min(int(rng.expovariate(1 / 7)), 95)
            if outcome is not Outcome.abandoned_in_ivr
            else None
        )
        rows.append(
            {
                "pbx": "ttu-pbx-1",
                "uniqueid": f"1746000000.{i}",
                "linkedid": f"1746000000.{i}",
                "caller_id_raw": "0" + number[3:],
                "caller_e164": number,
                "caller_id_status": "valid",
                "outcome": outcome,
                "started_at": started,
                "answered_at": started + timedelta(seconds=8 + (wait or 0)) if answered else None,
                "ended_at": started + timedelta(seconds=90),
                "queue": "emergency-112",
                "operator": rng.choice(OPERATORS) if answered else None,
                "wait_seconds": wait,
                # 8 s in the IVR before the queue, as answered_at says.
                "answer_seconds": 8 + (wait or 0) if answered else None,
                "overflows": 1 if wait is not None and wait > 25 else 0,
                "talk_seconds": rng.randrange(10, 400) if answered else None,
                "classification": classification,
                "classification_reason": reason,
                "telephony_state": {},
                "updated_at": started + timedelta(minutes=5),
            }
        )
    assert not prankers, "every repeat prank call was placed"
    return rows


def load(session: Session, settings: Settings, seed: int = 2025) -> Recap:
    """Insert the recap's calls, incidents and follow-up history (bulk); flushes, no commit."""
    rng = random.Random(seed)
    agencies.seed(session, settings.agencies)
    user = make_user(session, role=Role.operator, username="recap-operator")
    recap = Recap(calls=build_calls(rng))
    session.execute(insert(Call), recap.calls)
    agency_ids = dict(session.execute(select(Agency.code, Agency.id)).all())
    emergencies = session.execute(
        select(Call.id, Call.started_at).where(Call.classification == "emergency").order_by(Call.id)
    ).all()
    plan = [
        (code, status)
        for code, (resolved, dropped) in AGENCY_SPLIT.items()
        for status in [FollowUp.resolved] * resolved + [FollowUp.not_followed_up] * dropped
    ]
    rng.shuffle(plan)
    districts = settings.districts
    incidents, assignments = [], []
    for (call_id, started), (code, status) in zip(emergencies, plan, strict=True):
        district = districts[rng.randrange(len(districts))]
        day = local_day(started, settings.tz)
        incidents.append(
            {
                "call_id": call_id,
                "call_local_day": day,
                "category": rng.choice(settings.incidents.categories),
                "district": district.name,
                "village": rng.choice(district.villages),
                "summary": "recap fixture",
                "created_by_id": user.id,
                "created_at": started + timedelta(minutes=3),
            }
        )
        assignments.append(
            {
                "call_id": call_id,
                "agency_id": agency_ids[code],
                "is_primary": True,
                "status": status,
                "status_reason": "no unit available"
                if status is FollowUp.not_followed_up
                else None,
                "call_local_day": day,
                "assigned_at": started + timedelta(minutes=3),
                "assigned_by_id": user.id,
                "status_changed_at": started + timedelta(hours=2),
            }
        )
        recap.primary_status[code, status] += 1
    incident_ids = dict(
        session.execute(
            insert(Incident).returning(Incident.call_id, Incident.id, sort_by_parameter_order=True),
            incidents,
        ).all()
    )
    for a in assignments:
        a["incident_id"] = incident_ids[int(str(a.pop("call_id")))]
    ids = session.scalars(
        insert(Assignment).returning(Assignment.id, sort_by_parameter_order=True), assignments
    ).all()
    for a, assignment_id in zip(assignments, ids, strict=True):
        a["id"] = assignment_id
    session.execute(insert(AssignmentChange), list(_history(assignments, user.id)))
    session.flush()
    return recap


def _history(assignments: list[dict[str, Any]], user_id: int) -> Any:
    for a in assignments:
        steps: list[FollowUp | None] = [None, FollowUp.pending, FollowUp.dispatched]
        if a["status"] is FollowUp.resolved:
            steps += [FollowUp.acknowledged, FollowUp.resolved]
        else:
            steps += [FollowUp.not_followed_up]
        for k, (old, new) in enumerate(pairwise(steps)):
            yield {
                "assignment_id": a["id"],
                "old_status": old,
                "new_status": new,
                "reason": a["status_reason"] if new is FollowUp.not_followed_up else None,
                "changed_by_id": user_id,
                "changed_at": a["assigned_at"] + timedelta(minutes=10 * k),
            }
