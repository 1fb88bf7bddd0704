"""Signed, expiring acknowledgement links: the agency needs no account, only the message.

A token is ``<assignment id>.<expiry, unix seconds, base 36>.<signature>``; the signature is
HMAC-SHA256 over the first two, keyed with ``[notify] link_secret``, cut to 128 bits (short
enough for an SMS, far beyond guessing).

>>> token = sign(7, expires=1_900_000_000, secret=b"k")
>>> verify(token, secret=b"k", now=1_800_000_000)
7
>>> verify(token.replace("7.", "8.", 1), secret=b"k", now=1_800_000_000)
Traceback (most recent call last):
...
callcenter.notify.links.LinkForged: this link is not valid
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from callcenter.errors import Forbidden


class LinkRefused(Forbidden):
    """A link that is not honoured (403); the page says why in plain words."""


class LinkForged(LinkRefused):
    code = "link_forged"


class LinkExpired(LinkRefused):
    code = "link_expired"


def _signature(body: str, secret: bytes) -> str:
    digest = hmac.new(secret, body.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def sign(assignment_id: int, *, expires: int, secret: bytes) -> str:
    body = f"{assignment_id}.{_base36(expires)}"
    return f"{body}.{_signature(body, secret)}"


def verify(token: str, *, secret: bytes, now: int) -> int:
    """The assignment id of a genuine, unexpired token; LinkForged or LinkExpired otherwise."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 18:
        raise LinkForged("this link is not valid")
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_signature(body, secret), parts[2]):
        raise LinkForged("this link is not valid")
    if int(parts[1], 36) < now:
        raise LinkExpired("this link has expired")
    return int(parts[0])
