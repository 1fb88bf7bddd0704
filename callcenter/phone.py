"""Caller ID normalisation: kept as received, E.164 when it really is a number, never guessed.

>>> normalise("081234567890").e164
'+6281234567890'
>>> normalise("0388 21234").region
'Kefamenanu/Soe'
>>> normalise("<unknown>").status
<CallerIdStatus.withheld: 'withheld'>
>>> normalise("112").status, normalise("112").e164
(<CallerIdStatus.short_code: 'short_code'>, None)
>>> normalise("'; DROP TABLE").status
<CallerIdStatus.invalid: 'invalid'>
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType, shortnumberinfo

from callcenter.models import CallerIdStatus

# What Asterisk, AGI and carriers put where there is no number.
WITHHELD_VALUES = frozenset(
    {"", "anonymous", "unknown", "<unknown>", "private", "restricted", "unavailable", "withheld"}
)
# Digits with the usual separators; letters (vanity numbers) and anything else are not a number.
_NUMBER_SHAPE = re.compile(r"^\+?[0-9][0-9 ()./-]*$")

_LINE_TYPES = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.VOIP: "voip",
}


@dataclass(frozen=True, slots=True)
class CallerNumber:
    raw: str
    status: CallerIdStatus
    e164: str | None = None
    line_type: str | None = None
    region: str | None = None

    @property
    def key(self) -> str:
        """One identity per caller: the E.164 number, else the status and the raw value."""
        return self.e164 if self.e164 else f"{self.status.value}:{self.raw.strip()}"


def normalise(raw: str | None, region: str = "ID", *, place: bool = True) -> CallerNumber:
    """``place=False`` leaves ``region`` (the place name) out: the IVR needs only the E.164
    number, and loading the place names would add ~0.3 s to each process AGI's start."""
    raw = "" if raw is None else raw
    text = raw.strip()
    if text.lower() in WITHHELD_VALUES:
        return CallerNumber(raw=raw, status=CallerIdStatus.withheld)
    if not _NUMBER_SHAPE.match(text):
        return CallerNumber(raw=raw, status=CallerIdStatus.invalid)
    digits = re.sub(r"[^0-9+]", "", text)
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return CallerNumber(raw=raw, status=CallerIdStatus.invalid)
    if not digits.startswith("+") and shortnumberinfo.is_valid_short_number_for_region(
        number, region
    ):
        return CallerNumber(raw=raw, status=CallerIdStatus.short_code)
    if not phonenumbers.is_valid_number(number) and not digits.startswith(("+", "0")):
        # International format without the plus (6281234567890), as some trunks send it.
        try:
            number = phonenumbers.parse("+" + digits, region)
        except phonenumbers.NumberParseException:
            return CallerNumber(raw=raw, status=CallerIdStatus.invalid)
    if not phonenumbers.is_valid_number(number):
        return CallerNumber(raw=raw, status=CallerIdStatus.invalid)
    return CallerNumber(
        raw=raw,
        status=CallerIdStatus.valid,
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        line_type=_LINE_TYPES.get(phonenumbers.number_type(number)),
        region=_region(number) if place else None,
    )


def load_places() -> None:
    """Loads the place names now: long-running parts that name places (the AMI listener, the
    API) call this at start-up, so the first caller after a restart does not wait ~0.4 s."""
    from phonenumbers import geocoder  # noqa: F401


def _region(number: phonenumbers.PhoneNumber) -> str | None:
    # Imported at the first valid number unless load_places() ran: the geocoder loads every
    # country's place names (~0.3 s), a cost a short-lived process (a CLI command, a process
    # AGI) should not pay at start-up when it names no place.
    from phonenumbers import geocoder

    return geocoder.description_for_number(number, "id") or None
