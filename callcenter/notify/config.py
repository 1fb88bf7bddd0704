"""How agencies are told: their channels in order of preference, and the worker's timings.

Read from ``[notify]`` in config/callcenter.toml (docs/notifications.md shows each channel).
Secrets never sit in the file: the SMTP password, the SMS gateway token and the link secret come
from ``CALLCENTER_NOTIFY__...`` variables; each webhook names the variable holding its key.
"""

from __future__ import annotations

import enum
import os
import re
from datetime import time
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, model_validator

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")
_PHONE = re.compile(r"^\+?[0-9]{3,20}$")


class ChannelKind(enum.StrEnum):
    webhook = "webhook"  # HTTPS POST of JSON, signed with HMAC-SHA256 and a timestamp
    email = "email"  # over the SMTP server in [notify.smtp]
    sms_gammu = "sms_gammu"  # a file in gammu-smsd's outbox: works with the internet down
    sms_http = "sms_http"  # an HTTP SMS gateway ([notify.sms_http])

    @property
    def is_sms(self) -> bool:
        return self in (ChannelKind.sms_gammu, ChannelKind.sms_http)


class Channel(BaseModel):
    """One way to reach someone: ``to`` is a URL, an e-mail address or a phone number."""

    kind: ChannelKind
    to: str = Field(min_length=3, max_length=512)
    # webhook only: the environment variable that holds the HMAC key (never the key itself).
    secret_env: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Channel:
        if self.kind is ChannelKind.webhook:
            if not self.to.startswith(("https://", "http://")):
                raise ValueError(f"webhook address must be an http(s) URL, not {self.to!r}")
            if not self.secret_env or not _ENV_NAME.match(self.secret_env):
                raise ValueError("a webhook needs secret_env: the variable holding its key")
        elif self.kind is ChannelKind.email:
            if "@" not in self.to or any(c in self.to for c in "\r\n <>,"):
                raise ValueError(f"not one e-mail address: {self.to!r}")
        elif not _PHONE.match(self.to):
            raise ValueError(f"an SMS channel needs a phone number, not {self.to!r}")
        return self

    def secret(self) -> bytes | None:
        """The webhook key from the environment (None when the variable is unset or empty)."""
        value = os.environ.get(self.secret_env or "", "")
        return value.encode() if value else None

    @property
    def label(self) -> str:
        """What attempts and logs show of the channel: kind and address, never a secret (a
        URL's query string and user info may hold one, so they are left out).

        >>> Channel(kind="webhook", to="https://u:p@x.test/hook?token=s", secret_env="K").label
        'webhook:https://x.test/hook'
        """
        if self.kind is ChannelKind.webhook:
            url = urlsplit(self.to)
            port = f":{url.port}" if url.port else ""
            return f"webhook:{url.scheme}://{url.hostname}{port}{url.path}"
        return f"{self.kind.value}:{self.to}"


class AgencyContacts(BaseModel):
    channels: list[Channel] = Field(default_factory=list)
    # Escalation goes here (and to the supervisor) when the first contacts stay silent.
    second_contacts: list[Channel] = Field(default_factory=list)
    # Minutes an assignment may wait for acknowledgement; per category overrides.
    ack_minutes: int | None = Field(default=None, gt=0)
    ack_minutes_by_category: dict[str, int] = Field(default_factory=dict)
    # Whether the caller's number is given to this agency (e.g. police, hospital call back).
    share_caller_number: bool = True


class SupervisorContacts(BaseModel):
    channels: list[Channel] = Field(default_factory=list)


class SmtpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    username: str = ""
    password: SecretStr = SecretStr("")
    sender: str = "siaga112@localhost"
    timeout_seconds: float = 15.0


class GammuSettings(BaseModel):
    """gammu-smsd's FILES backend folders (its own smsdrc must name the same ones)."""

    outbox: str = "/var/spool/gammu/outbox/"
    sent: str = "/var/spool/gammu/sent/"
    error: str = "/var/spool/gammu/error/"
    inbox: str = "/var/spool/gammu/inbox/"
    # Replies read from the inbox are moved here once recorded.
    processed: str = "/var/spool/gammu/processed/"


class SmsHttpSettings(BaseModel):
    """An HTTP SMS gateway: POST JSON {number, text, id} with a bearer token."""

    url: str = ""
    token: SecretStr = SecretStr("")
    timeout_seconds: float = 10.0


class NotifySettings(BaseModel):
    enabled: bool = True
    # Where the acknowledgement links in messages point (the address agencies can reach).
    public_base_url: str = "http://127.0.0.1:8000"
    link_secret: SecretStr = SecretStr("change-me")
    link_ttl_hours: int = Field(default=72, gt=0)
    poll_seconds: float = Field(default=2.0, gt=0)
    # Retries with exponential backoff between these bounds; after attempts_per_channel
    # failures the next channel is tried; after the last one the first again (never given up).
    retry_min_seconds: float = Field(default=10.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    attempts_per_channel: int = Field(default=3, gt=0)
    # A worker that dies mid-send holds its claim this long; then another worker may retry.
    claim_seconds: float = Field(default=120.0, gt=0)
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    # Default time to acknowledge; an agency's ack_minutes overrides it, and both are
    # overridden per category. Unset: [incidents] followup_overdue_minutes.
    ack_minutes: int | None = Field(default=None, gt=0)
    # The daily digest of assignments still open, at this local time.
    daily_digest: bool = True
    digest_at: time = time(20, 0)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    gammu: GammuSettings = Field(default_factory=GammuSettings)
    sms_http: SmsHttpSettings = Field(default_factory=SmsHttpSettings)
    agencies: dict[str, AgencyContacts] = Field(default_factory=dict)
    supervisor: SupervisorContacts = Field(default_factory=SupervisorContacts)

    def contacts(self, agency_code: str) -> AgencyContacts:
        return self.agencies.get(agency_code) or AgencyContacts()

    def ack_minutes_for(self, agency_code: str, category: str, default: int) -> int:
        contacts = self.contacts(agency_code)
        if category in contacts.ack_minutes_by_category:
            return contacts.ack_minutes_by_category[category]
        return contacts.ack_minutes or self.ack_minutes or default
