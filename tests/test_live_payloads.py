"""A publish's messages packed into NOTIFY payloads: each under PostgreSQL's 8,000-byte limit,
and unpacked to the same messages in the same order (no database needed)."""

from __future__ import annotations

import json
import random
from typing import Any

from callcenter.live import MAX_NOTIFY_BYTES, RESYNC, pack_payloads, unpack_payload


def test_payloads_stay_under_the_limit_and_unpack_to_the_messages_in_order() -> None:
    rng = random.Random(13)
    # Sizes around every edge: tiny, a third of a payload, just under, at and over the limit.
    sizes = [0, 1, 2600, MAX_NOTIFY_BYTES - 40, MAX_NOTIFY_BYTES - 20, MAX_NOTIFY_BYTES, 20_000]
    messages: list[dict[str, Any]] = [
        {"n": n, "pad": "é" * rng.choice(sizes) if n % 7 == 0 else "x" * rng.choice(sizes)}
        for n in range(500)
    ]
    payloads = pack_payloads(messages)

    assert all(len(p.encode()) <= MAX_NOTIFY_BYTES for p in payloads)
    unpacked = [m for p in payloads for m in unpack_payload(p)]
    # A message goes as itself when it fits a payload alone ("[" + it + "]"), else a resync.
    expected = [m if len(_json(m)) + 2 <= MAX_NOTIFY_BYTES else RESYNC for m in messages]
    assert RESYNC in expected
    assert len(expected) - expected.count(RESYNC) > 200
    assert unpacked == expected
    assert len(payloads) < len(messages)


def _json(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def test_a_single_object_and_junk_are_read_as_before() -> None:
    assert unpack_payload('{"uniqueid": "1.1"}') == [{"uniqueid": "1.1"}]
    assert unpack_payload("not json") == []
    assert unpack_payload("[1, 2]") == []
    assert unpack_payload('[{"a": 1}, 2, {"b": 2}]') == [{"a": 1}, {"b": 2}]
