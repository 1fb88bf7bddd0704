"""An event's identity in the store: its key (``Frame.dedup_key``), numbered when it repeats.

Asterisk sends some events twice with the very same text (two ``VarSet`` of one variable, a
``DialEnd`` per leg): without the ``Timestamp`` line, which a replay may or may not carry, they
have the same key. They are still two events, so the second one of a key is ``key#2``. The
count is over the recent keys of the stream (identical events come close together), so the same
stream, replayed with or without timestamps, gives the same keys.

>>> keys = EventKeys()
>>> keys.key_of("1.1:ab"), keys.key_of("1.1:cd"), keys.key_of("1.1:ab")
('1.1:ab', '1.1:cd', '1.1:ab#2')
"""

from __future__ import annotations

from collections import OrderedDict

# Keys remembered: identical events come within a call, never 100,000 events apart.
RECENT_KEYS = 100_000


class EventKeys:
    def __init__(self, size: int = RECENT_KEYS) -> None:
        self.size = size
        self._seen: OrderedDict[str, int] = OrderedDict()

    def key_of(self, base: str) -> str:
        """``base`` the first time it is seen, ``base#n`` the nth time."""
        seen = self._seen
        count = seen.get(base, 0) + 1
        seen[base] = count
        if count > 1:
            seen.move_to_end(base)
            return f"{base}#{count}"
        if len(seen) > self.size:
            seen.popitem(last=False)
        return base
