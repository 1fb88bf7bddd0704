"""What every channel gets (one rendered message) and how it fails.

DeliveryFailed
├── retryable (network down, timeout, 5xx, modem spool not writable): the same channel again,
│   with backoff, then the next one
└── not retryable (refused address, missing key): the next channel at once
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from callcenter.notify.config import Channel


@dataclass(frozen=True)
class Outgoing:
    """One notification rendered for every kind of channel; ``key`` is its idempotency key."""

    key: str
    notification_id: int
    sms_parts: list[str]
    subject: str
    body: str
    document: dict[str, Any]


class DeliveryFailed(Exception):
    def __init__(self, detail: str, *, retryable: bool = True) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable


class Sender(Protocol):
    def __call__(self, message: Outgoing, channel: Channel) -> str:
        """Deliver ``message`` to ``channel``; return what the far end said, or raise."""
