"""Passwords (argon2) and bearer tokens (signed JWT). No I/O, no database."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import NamedTuple

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from callcenter.errors import Unauthorized

_hasher = PasswordHasher()
_ALGORITHM = "HS256"


@cache
def dummy_hash() -> str:
    """Verified against when the user does not exist, so timing does not reveal usernames.
    Made on first use, not on import: every command would pay an argon2 hash to start (the
    login pool makes it when an API process starts)."""
    return _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no hash (no such user) the dummy hash is checked, so
    the answer takes as long as for a real user."""
    try:
        matches = _hasher.verify(password_hash or dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matches and bool(password_hash)


@lru_cache(maxsize=8)
def signing_key(secret: str) -> bytes:
    """The HMAC key derived from the configured secret: always 32 bytes, as HS256 wants, so the
    short development default does not make PyJWT warn (production refuses short secrets)."""
    return hashlib.sha256(b"siaga112-token-key:" + secret.encode()).digest()


class TokenClaims(NamedTuple):
    user_id: int
    generation: int  # the user's token_generation when issued: a raised one revokes the token
    expires: float  # Unix time


def issue_token(
    *, user_id: int, secret: str, ttl: timedelta, generation: int = 0, now: datetime | None = None
) -> str:
    now = now or datetime.now(UTC)
    claims = {"sub": str(user_id), "gen": generation, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, signing_key(secret), algorithm=_ALGORITHM)


def read_token(token: str, *, secret: str) -> int:
    """The user id in a valid, unexpired token; Unauthorized otherwise."""
    return read_token_claims(token, secret=secret).user_id


def read_token_claims(token: str, *, secret: str) -> TokenClaims:
    """The claims of a valid, unexpired token; Unauthorized otherwise.

    A token verified once is remembered with its expiry (checking a signature and decoding the
    claims is a tenth of an API request's CPU, and an operator sends the same token all shift).
    """
    key = (secret, token)
    if (known := _verified.get(key)) is not None:
        if time.time() < known.expires:
            return known
        _verified.pop(key, None)
    try:
        decoded = jwt.decode(
            token, signing_key(secret), algorithms=[_ALGORITHM], options={"require": ["exp"]}
        )
        claims = TokenClaims(int(decoded["sub"]), int(decoded.get("gen", 0)), float(decoded["exp"]))
    except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
        raise Unauthorized("invalid or expired token") from exc
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()  # a rare, cheap reset beats an LRU's per-request bookkeeping
    _verified[key] = claims
    return claims


# (secret, token) -> its claims, for tokens whose signature checked out.
_verified: dict[tuple[str, str], TokenClaims] = {}
_VERIFIED_MAX = 10_000
