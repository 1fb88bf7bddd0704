"""Statistics readers admitted a moment ago are not checked again until ADMITTED_FOR_S passes.

Eighty dashboards, each asking after every rollup refresh (twice a second under load), cost a
thread hop and two statements a request to find the same active supervisors again: load on the
database and on the event loop that an operator's tag shares. A user deactivated, demoted or
logged out (their tokens revoked) is refused within this bound; an expired token at once (its
claims are read on every request).
"""

from __future__ import annotations

import time

from callcenter.models import User
from callcenter.users.security import TokenClaims

ADMITTED_FOR_S = 1.0
_MAX_ENTRIES = 1000  # past this, expired admissions are dropped


class RecentlyAdmitted:
    """Used on the event loop only (no lock)."""

    def __init__(self, seconds: float = ADMITTED_FOR_S) -> None:
        self.seconds = seconds
        self._until: dict[tuple[int, int], tuple[float, User]] = {}

    def get(self, token: TokenClaims) -> User | None:
        found = self._until.get((token.user_id, token.generation))
        if found is None or found[0] <= time.monotonic():
            return None
        return found[1]

    def add(self, token: TokenClaims, user: User) -> None:
        now = time.monotonic()
        if len(self._until) >= _MAX_ENTRIES:
            self._until = {k: v for k, v in self._until.items() if v[0] > now}
        self._until[(token.user_id, token.generation)] = (now + self.seconds, user)
