"""Bearer tokens: a remembered verification never outlives the token or crosses secrets."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.errors import Unauthorized
from callcenter.users.security import issue_token, read_token

SECRET = "token-test-secret-" + "x" * 32


def test_a_verified_token_is_refused_once_it_expires() -> None:
    issued = datetime.now(UTC) - timedelta(minutes=10)
    token = issue_token(user_id=7, secret=SECRET, ttl=timedelta(minutes=10, seconds=1), now=issued)
    assert read_token(token, secret=SECRET) == 7
    assert read_token(token, secret=SECRET) == 7  # the remembered verification
    time.sleep(1.1)
    with pytest.raises(Unauthorized):
        read_token(token, secret=SECRET)


def test_a_token_verified_under_one_secret_is_refused_under_another() -> None:
    token = issue_token(user_id=8, secret=SECRET, ttl=timedelta(minutes=5))
    assert read_token(token, secret=SECRET) == 8
    with pytest.raises(Unauthorized):
        read_token(token, secret="another-secret-" + "y" * 32)


def test_a_tampered_token_is_refused() -> None:
    token = issue_token(user_id=9, secret=SECRET, ttl=timedelta(minutes=5))
    assert read_token(token, secret=SECRET) == 9
    header, claims, signature = token.split(".")
    with pytest.raises(Unauthorized):
        read_token(f"{header}.{claims}.{signature[::-1]}", secret=SECRET)


def test_the_development_default_secret_signs_without_a_warning() -> None:
    """`make run` with the default secret logged PyJWT's InsecureKeyLengthWarning at every
    login; with warnings as errors this test fails on it."""
    import warnings
    from datetime import timedelta

    from callcenter.settings import Settings
    from callcenter.users.security import issue_token, read_token

    secret = Settings(environment="development").token_secret.get_secret_value()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        token = issue_token(user_id=7, secret=secret, ttl=timedelta(minutes=5))
        assert read_token(token, secret=secret) == 7
