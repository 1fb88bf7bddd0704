"""Configuration: config/callcenter.toml for the defaults, CALLCENTER_* variables on top.

Nested sections use a double underscore: ``CALLCENTER_AMI__SECRET`` overrides ``[ami] secret``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "config" / "callcenter.toml"
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "password"})


class AmiSettings(BaseModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "backend112"
    secret: SecretStr = SecretStr("change-me")
    pbx_name: str = "ttu-pbx-1"
    inbound_context: str = "from-pstn"
    inbound_extensions: list[str] = Field(default_factory=lambda: ["112"])
    queue: str = "emergency-112"
    ping_interval_seconds: float = 10.0
    ping_timeout_seconds: float = 5.0
    reconnect_min_seconds: float = 1.0
    reconnect_max_seconds: float = 30.0
    spool_dir: Path = Path("data/spool")
    spool_max_bytes: int = 256 * 1024 * 1024
    queue_log_path: str = ""
    cdr_path: str = ""
    # The zone cdr_csv writes its local times in (the Asterisk server's).
    cdr_timezone: str = "UTC"


class FastAgiSettings(BaseModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 4573
    max_sessions: int = 64


class PromptNames(BaseModel):
    greeting: str = "custom/112-greeting"
    prank_warning: str = "custom/112-prank-warning"
    please_hold: str = "custom/112-please-hold"
    all_busy: str = "custom/112-all-busy"


class IvrSettings(BaseModel):
    queue: str = "emergency-112"
    prank_threshold: int = 3
    prank_window_days: int = 30
    lookup_deadline_ms: int = 200
    priority_normal: int = 10
    priority_flagged: int = 1
    prompts: PromptNames = Field(default_factory=PromptNames)
    prompt_texts: dict[str, str] = Field(default_factory=dict)


class AgencyConfig(BaseModel):
    """An agency loaded into the agencies table by `callcenter migrate` (when its code is new)."""

    code: str = Field(pattern=r"^[a-z0-9_\-]{2,32}$")
    name: str
    kind: str


class DistrictConfig(BaseModel):
    """A district (kecamatan) of the regency and the villages an incident may be placed in."""

    name: str
    villages: list[str] = Field(default_factory=list)


class IncidentSettings(BaseModel):
    categories: list[str] = Field(
        default_factory=lambda: [
            "fire",
            "medical",
            "crime",
            "traffic_accident",
            "disaster",
            "search_and_rescue",
            "electricity",
            "other",
        ]
    )
    # An assignment not acknowledged this long after it was made is reported overdue.
    followup_overdue_minutes: int = Field(default=30, gt=0)


class CallbackSettings(BaseModel):
    # Calls older than this are no longer offered for a call-back.
    window_hours: int = Field(default=72, gt=0)
    # After this many unanswered attempts the item leaves the worklist.
    max_attempts: int = Field(default=3, gt=0)


class StatsSettings(BaseModel):
    # Calls changed up to this long before the rollup watermark are re-checked on each
    # refresh, so a transaction that commits late is still counted.
    refresh_safety_seconds: int = Field(default=600, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CALLCENTER_",
        env_nested_delimiter="__",
        extra="ignore",
        # A validation error must never echo a secret it was given.
        hide_input_in_errors=True,
    )

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = ""
    data_dir: Path = Path("data")
    timezone: str = "Asia/Makassar"
    phone_region: str = "ID"
    token_secret: SecretStr = SecretStr("change-me")
    # A token lasts one shift at most (12 h); log-out or a role change revokes it sooner.
    token_ttl_minutes: int = Field(default=720, ge=1, le=720)
    login_max_failures: int = 5
    login_lockout_seconds: int = 300
    # Failed logins a minute from one client address (a whole center may share one address).
    login_max_failures_per_address: int = 30
    log_level: str = "INFO"
    classification_reasons: list[str] = Field(default_factory=list)
    ami: AmiSettings = Field(default_factory=AmiSettings)
    fastagi: FastAgiSettings = Field(default_factory=FastAgiSettings)
    ivr: IvrSettings = Field(default_factory=IvrSettings)
    agencies: list[AgencyConfig] = Field(default_factory=list)
    districts: list[DistrictConfig] = Field(default_factory=list)
    incidents: IncidentSettings = Field(default_factory=IncidentSettings)
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)
    stats: StatsSettings = Field(default_factory=StatsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("CALLCENTER_CONFIG", DEFAULT_CONFIG_FILE))
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file)
        return (init_settings, env_settings, toml)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment != "production":
            return self
        weak = [
            name
            for name, value in (
                ("token_secret", self.token_secret),
                ("ami.secret", self.ami.secret),
            )
            if value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS
            or (name == "token_secret" and len(value.get_secret_value()) < 32)
        ]
        if weak:
            raise ValueError(
                f"placeholder or weak secret(s) {', '.join(weak)} are refused in production: "
                "set them through CALLCENTER_TOKEN_SECRET / CALLCENTER_AMI__SECRET"
            )
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def resolved_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'callcenter.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
