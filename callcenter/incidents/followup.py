"""The follow-up state machine of an agency assignment (pure: no database, no web).

pending ─► dispatched ─► acknowledged ─► resolved
   │            │              │
   └────────────┴──────────────┴─► not_followed_up (with a reason)

>>> check_transition(FollowUp.pending, FollowUp.dispatched, reason=None)
>>> check_transition(FollowUp.pending, FollowUp.resolved, reason=None)
Traceback (most recent call last):
...
callcenter.incidents.followup.TransitionRefused: cannot go from pending to resolved
"""

from __future__ import annotations

import enum


class FollowUp(enum.StrEnum):
    pending = "pending"
    dispatched = "dispatched"
    acknowledged = "acknowledged"
    resolved = "resolved"
    not_followed_up = "not_followed_up"

    @property
    def is_final(self) -> bool:
        return self in (FollowUp.resolved, FollowUp.not_followed_up)


NEXT: dict[FollowUp, frozenset[FollowUp]] = {
    FollowUp.pending: frozenset({FollowUp.dispatched, FollowUp.not_followed_up}),
    FollowUp.dispatched: frozenset({FollowUp.acknowledged, FollowUp.not_followed_up}),
    FollowUp.acknowledged: frozenset({FollowUp.resolved, FollowUp.not_followed_up}),
    FollowUp.resolved: frozenset(),
    FollowUp.not_followed_up: frozenset(),
}


class TransitionRefused(Exception):
    """A step the state machine does not allow (the API answers 409)."""


class ReasonRequired(Exception):
    """not_followed_up without a reason (the API answers 422)."""


def check_transition(current: FollowUp, target: FollowUp, *, reason: str | None) -> None:
    if target not in NEXT[current]:
        raise TransitionRefused(f"cannot go from {current.value} to {target.value}")
    if target is FollowUp.not_followed_up and not (reason and reason.strip()):
        raise ReasonRequired("not_followed_up needs a reason")
