"""SMS through an HTTP gateway ([notify.sms_http]): one POST of JSON per part.

Body ``{"to": "+62...", "text": "...", "id": "<key>-<part>"}`` with ``Authorization: Bearer
<token>``; a gateway that keeps ``id`` sends a retried part once.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from callcenter.notify.channels.base import DeliveryFailed, Outgoing
from callcenter.notify.config import Channel, SmsHttpSettings


class SmsHttpSender:
    def __init__(self, settings: SmsHttpSettings) -> None:
        self.settings = settings

    def __call__(self, message: Outgoing, channel: Channel) -> str:
        s = self.settings
        if not s.url:
            raise DeliveryFailed(
                "no SMS gateway configured ([notify.sms_http] url)", retryable=False
            )
        for part, text in enumerate(message.sms_parts, 1):
            body = json.dumps({"to": channel.to, "text": text, "id": f"{message.key}-{part}"})
            request = urllib.request.Request(
                s.url,
                data=body.encode(),
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {s.token.get_secret_value()}",
                    "Idempotency-Key": f"{message.key}-{part}",
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=s.timeout_seconds):
                    pass
            except urllib.error.HTTPError as exc:
                exc.close()  # its body is an open socket
                retry = exc.code >= 500 or exc.code in (408, 429)
                raise DeliveryFailed(f"gateway HTTP {exc.code}", retryable=retry) from None
            except TimeoutError:
                raise DeliveryFailed("gateway did not answer in time") from None
            except (urllib.error.URLError, OSError) as exc:
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                raise DeliveryFailed(f"gateway unreachable: {reason}") from None
        return f"{len(message.sms_parts)} part(s) accepted by the gateway"
