"""Withheld numbers: kept for call-back, masked in lists for the roles that do not need them.

A caller who asked for privacy (presentation restricted, ``calls.caller_id_private``) still has
the number the network asserted: operators answer and call back, admins manage and export, so
they see it. Supervisors watch the queue and the figures; lists show them the number masked.

>>> mask_fields({"caller_id_private": True, "caller_id_raw": "081234567890",
...              "caller_e164": "+6281234567890", "caller_id_name": "Budi"}, Role.supervisor)
{'caller_id_private': True, 'caller_id_raw': '*********890', 'caller_e164': '+**********890', \
'caller_id_name': None}
>>> mask_fields({"caller_id_private": True, "caller_id_raw": "081234567890"}, Role.operator)
{'caller_id_private': True, 'caller_id_raw': '081234567890'}
"""

from __future__ import annotations

from typing import Any, TypeVar

from callcenter.calls.schemas import CallSummary
from callcenter.models import Role

# Roles that see a withheld caller's number in lists.
SEES_WITHHELD_NUMBERS = frozenset({Role.operator, Role.admin})

_Fields = TypeVar("_Fields", bound=dict[str, Any])


def mask_number(number: str) -> str:
    """Every digit but the last three hidden: a withheld number gives away no area or operator.

    >>> mask_number("038821234"), mask_number("+6238821234"), mask_number("12")
    ('******234', '+*******234', '**')
    """
    if len(number) <= 3:
        return "*" * len(number)
    return "".join("*" if c.isalnum() else c for c in number[:-3]) + number[-3:]


def sees_number(role: Role) -> bool:
    return role in SEES_WITHHELD_NUMBERS


def mask_fields(fields: _Fields, role: Role) -> _Fields:
    """The call's caller fields masked in place when it is private and the role need not see
    them; returned for convenience."""
    if not fields.get("caller_id_private") or sees_number(role):
        return fields
    for key in ("caller_id_raw", "caller_e164"):
        if fields.get(key):
            fields[key] = mask_number(fields[key])
    if "caller_id_name" in fields:
        fields["caller_id_name"] = None
    return fields


def shown_to(message: dict[str, Any], role: Role) -> dict[str, Any]:
    """A live message as this role may see it: masked in a copy (the bus shares the original
    between every subscriber), or the original when nothing needs masking."""
    if not message.get("caller_id_private") or sees_number(role):
        return message
    return mask_fields(dict(message), role)


def summary_for(call: Any, role: Role) -> CallSummary:
    """A call as a list shows it to this role."""
    summary = CallSummary.model_validate(call)
    if not summary.caller_id_private or sees_number(role):
        return summary
    caller = {
        "caller_id_private": True,
        "caller_id_raw": summary.caller_id_raw,
        "caller_e164": summary.caller_e164,
        "caller_id_name": summary.caller_id_name,
    }
    return summary.model_copy(update=mask_fields(caller, role))
