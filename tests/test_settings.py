import pytest
from pydantic import ValidationError

from callcenter.settings import Settings


def test_production_refuses_weak_secrets_without_echoing_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CALLCENTER_ENVIRONMENT", "production")
    monkeypatch.setenv("CALLCENTER_TOKEN_SECRET", "short-but-private-value")
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = str(refused.value)
    assert "token_secret" in message
    assert "ami.secret" in message
    assert "short-but-private-value" not in message


def test_environment_variables_override_the_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_AMI__PORT", "6038")
    monkeypatch.setenv("CALLCENTER_TIMEZONE", "Asia/Jakarta")
    settings = Settings()
    assert settings.ami.port == 6038
    assert settings.timezone == "Asia/Jakarta"
    assert settings.ami.inbound_extensions == ["112"]  # from config/callcenter.toml
