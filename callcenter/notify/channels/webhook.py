"""HTTPS webhook: JSON, signed so the receiver can check it and refuse replays.

Headers: ``X-Siaga112-Timestamp`` (unix seconds), ``X-Siaga112-Signature: v1=<hex>`` where
``<hex>`` is HMAC-SHA256(key, ``<timestamp>.<body bytes>``), and ``Idempotency-Key``: the same
on every retry of one notification, so a receiver keeps the first and ignores repeats.

>>> signature(b"k", 1700000000, b'{"a":1}')
'v1=1b6ad1bc9bf48c52ce01939866d5877c6cc4e87ddad27e16673cb8c4964394a3'
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

from callcenter.notify.channels.base import DeliveryFailed, Outgoing
from callcenter.notify.config import Channel

SIGNATURE_HEADER = "X-Siaga112-Signature"
TIMESTAMP_HEADER = "X-Siaga112-Timestamp"


def signature(key: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


class WebhookSender:
    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout

    def __call__(self, message: Outgoing, channel: Channel) -> str:
        key = channel.secret()
        if key is None:
            raise DeliveryFailed(
                f"webhook key variable {channel.secret_env} is not set", retryable=False
            )
        body = json.dumps(message.document, ensure_ascii=False, sort_keys=True).encode()
        stamp = int(time.time())
        request = urllib.request.Request(
            channel.to,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "siaga112-notify",
                "Idempotency-Key": message.key,
                TIMESTAMP_HEADER: str(stamp),
                SIGNATURE_HEADER: signature(key, stamp, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            exc.close()  # its body is an open socket
            # 408 and 429 say "later"; any other 4xx will not change by retrying.
            retry = exc.code >= 500 or exc.code in (408, 429)
            raise DeliveryFailed(f"HTTP {exc.code}", retryable=retry) from None
        except TimeoutError:
            raise DeliveryFailed(f"no answer within {self.timeout:g} s") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise DeliveryFailed(f"unreachable: {reason}") from None
