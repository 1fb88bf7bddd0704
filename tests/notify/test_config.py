"""Notification settings: secrets from the environment, refused as placeholders in production."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr, ValidationError

from callcenter.notify.config import Channel, NotifySettings
from callcenter.settings import Settings


def test_production_refuses_the_placeholder_link_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    strong = SecretStr("s" * 40)
    with pytest.raises(ValidationError, match=r"notify\.link_secret"):
        Settings(environment="production", token_secret=strong, ami={"secret": "a-real-one"})
    monkeypatch.setenv("CALLCENTER_NOTIFY__LINK_SECRET", "from-the-environment-" + "x" * 20)
    settings = Settings(environment="production", token_secret=strong, ami={"secret": "a-real-one"})
    assert settings.notify.link_secret.get_secret_value().startswith("from-the-environment-")


def test_smtp_password_and_gateway_token_come_from_the_environment_and_never_show(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CALLCENTER_NOTIFY__SMTP__PASSWORD", "smtp-pass-123")
    monkeypatch.setenv("CALLCENTER_NOTIFY__SMS_HTTP__TOKEN", "gateway-token-456")
    settings = Settings(environment="test")
    assert settings.notify.smtp.password.get_secret_value() == "smtp-pass-123"
    assert settings.notify.sms_http.token.get_secret_value() == "gateway-token-456"
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings: %s", settings.notify)
    shown = repr(settings) + caplog.text
    assert "smtp-pass-123" not in shown
    assert "gateway-token-456" not in shown


def test_a_webhook_key_is_read_from_its_variable_only(monkeypatch: pytest.MonkeyPatch) -> None:
    channel = Channel(kind="webhook", to="https://x.test/hook?k=1", secret_env="AGENCY_KEY")
    assert channel.secret() is None
    monkeypatch.setenv("AGENCY_KEY", "k3y")
    assert channel.secret() == b"k3y"
    assert "k=1" not in channel.label
    assert "k3y" not in repr(NotifySettings(agencies={"a": {"channels": [channel]}}))
