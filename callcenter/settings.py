"""Configuration: config/callcenter.toml for the defaults, CALLCENTER_* variables on top.

Nested sections use a double underscore: ``CALLCENTER_AMI__SECRET`` overrides ``[ami] secret``.
"""

from __future__ import annotations

import os
import sys
import tomllib
import typing
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from callcenter.errors import CallCenterError
from callcenter.notify.config import NotifySettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# migrations/ and config/: in the checkout, or under <prefix>/share/siaga112 from a wheel.
SHARE_ROOT = (
    PROJECT_ROOT
    if (PROJECT_ROOT / "migrations").is_dir()
    else Path(sys.prefix) / "share" / "siaga112"
)
DEFAULT_CONFIG_FILE = SHARE_ROOT / "config" / "callcenter.toml"
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "password"})


class ConfigError(CallCenterError):
    """The configuration cannot be used: a missing or malformed file, an unknown key, a bad
    value. Its message names the file and the key; commands print it as one line."""

    code = "config_error"


class Section(BaseModel):
    """A config section: a misspelt key (``[ami] portt``) is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")


class AmiSettings(Section):
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
    # cel_custom's JSON lines: hangup causes, operator channels, exact times for reconcile.
    cel_path: str = ""
    # The zone cdr_csv writes its local times in (the Asterisk server's).
    cdr_timezone: str = "UTC"


class FastAgiSettings(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 4573
    # Sessions at once; each is a thread waiting on its socket (README: memory per session).
    max_sessions: int = 1000
    # Peer addresses allowed to open sessions; empty: any peer that can reach host:port.
    allowed_peers: list[str] = Field(default_factory=list)
    # When set, the AGI URL must carry it: AGI(agi://host:4573/ivr?secret=...).
    secret: SecretStr | None = None


class PromptNames(Section):
    greeting: str = "custom/112-greeting"
    prank_warning: str = "custom/112-prank-warning"
    please_hold: str = "custom/112-please-hold"
    all_busy: str = "custom/112-all-busy"


class IvrSettings(Section):
    queue: str = "emergency-112"
    prank_threshold: int = 3
    prank_window_days: int = 30
    lookup_deadline_ms: int = 200
    priority_normal: int = 10
    priority_flagged: int = 1
    prompts: PromptNames = Field(default_factory=PromptNames)
    prompt_texts: dict[str, str] = Field(default_factory=dict)


class AgencyConfig(Section):
    """An agency loaded into the agencies table by `callcenter migrate` (when its code is new)."""

    code: str = Field(pattern=r"^[a-z0-9_\-]{2,32}$")
    name: str
    kind: str


class DistrictConfig(Section):
    """A district (kecamatan) of the regency and the villages an incident may be placed in."""

    name: str
    villages: list[str] = Field(default_factory=list)


class IncidentSettings(Section):
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


class CallbackSettings(Section):
    # Calls older than this are no longer offered for a call-back.
    window_hours: int = Field(default=72, gt=0)
    # After this many unanswered attempts the item leaves the worklist.
    max_attempts: int = Field(default=3, gt=0)


class StatsSettings(Section):
    # Calls changed up to this long before the rollup watermark are re-checked on each
    # refresh, so a transaction that commits late is still counted.
    refresh_safety_seconds: int = Field(default=600, ge=0)


class RetentionSettings(BaseModel):
    """How long personal data is kept (docs/privacy.md); `callcenter retention` applies it."""

    # Raw AMI frames (they hold caller numbers and names): deleted after this.
    raw_events_days: int = Field(default=90, gt=0)
    # Caller numbers and names on calls, IVR runs, callers and prank rollups: pseudonymised.
    caller_numbers_days: int = Field(default=365, gt=0)
    # References to call recordings, once the backend stores any (it stores none today).
    recording_references_days: int = Field(default=90, gt=0)


class MetricsSettings(BaseModel):
    # Prometheus metrics on a port of their own, never the API's (docs/deploy.md).
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9112, ge=0, le=65535)


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
    # "json": one object a line; "text": for a person; "auto": text on a terminal, else JSON.
    log_format: Literal["auto", "json", "text"] = "auto"
    classification_reasons: list[str] = Field(default_factory=list)
    ami: AmiSettings = Field(default_factory=AmiSettings)
    fastagi: FastAgiSettings = Field(default_factory=FastAgiSettings)
    ivr: IvrSettings = Field(default_factory=IvrSettings)
    agencies: list[AgencyConfig] = Field(default_factory=list)
    districts: list[DistrictConfig] = Field(default_factory=list)
    incidents: IncidentSettings = Field(default_factory=IncidentSettings)
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)
    stats: StatsSettings = Field(default_factory=StatsSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

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
        return (init_settings, env_settings, _checked_toml(settings_cls, config_file))

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment != "production":
            return self
        weak = [
            name
            for name, value in (
                ("token_secret", self.token_secret),
                ("ami.secret", self.ami.secret),
                ("notify.link_secret", self.notify.link_secret),
            )
            if value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS
            or (name == "token_secret" and len(value.get_secret_value()) < 32)
        ]
        if weak:
            raise ValueError(
                f"placeholder or weak secret(s) {', '.join(weak)} are refused in production: "
                "set them through CALLCENTER_TOKEN_SECRET / CALLCENTER_AMI__SECRET / "
                "CALLCENTER_NOTIFY__LINK_SECRET"
            )
        return self

    @model_validator(mode="after")
    def _numbers_outlive_the_prank_window(self) -> Settings:
        # The IVR warns repeat prank callers by number: it must still see them.
        if self.retention.caller_numbers_days < self.ivr.prank_window_days:
            raise ValueError(
                "retention.caller_numbers_days must be at least ivr.prank_window_days "
                f"({self.ivr.prank_window_days})"
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


def _checked_toml(settings_cls: type[BaseSettings], path: Path) -> TomlConfigSettingsSource:
    """The TOML file as a settings source: it must exist, parse, and hold only known keys."""
    if not path.is_file():
        raise ConfigError(f"config file {path} not found (CALLCENTER_CONFIG names it)")
    try:
        source = TomlConfigSettingsSource(settings_cls, toml_file=path)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = unknown_keys(source.toml_data, settings_cls)
    if unknown:
        raise ConfigError(f"config file {path}: unknown key {', '.join(unknown)}")
    return source


def unknown_keys(data: Mapping[str, Any], model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted names of the keys in ``data`` that ``model`` has no field for.

    >>> unknown_keys({"ami": {"portt": 1, "port": 2}, "agencies": [{"code": "x", "nam": ""}]},
    ...              Settings)
    ['ami.portt', 'agencies[0].nam']
    """
    found = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            found.append(f"{prefix}{key}")
            continue
        nested = _model_of(field.annotation)
        if nested is None:
            continue
        if isinstance(value, Mapping):
            found += unknown_keys(value, nested, f"{prefix}{key}.")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    found += unknown_keys(item, nested, f"{prefix}{key}[{i}].")
    return found


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The section model of a field: ``AmiSettings`` or ``list[AgencyConfig]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        return item if isinstance(item, type) and issubclass(item, BaseModel) else None
    return None


def describe(error: ValidationError) -> str:
    """A settings validation error as one line, naming each key (never echoing the value)."""
    config = os.environ.get("CALLCENTER_CONFIG", str(DEFAULT_CONFIG_FILE))
    problems = "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or 'settings'}: {e['msg']}"
        for e in error.errors()
    )
    return f"configuration ({config} and CALLCENTER_* variables): {problems}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
