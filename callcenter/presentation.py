"""Caller presentation: whether the caller asked for the number to be withheld.

Pure and import-light: the process AGI (callcenter.ivr.flow) uses it on every call's start-up.
"""

from __future__ import annotations


def restricted(presentation: str | None) -> bool:
    """Whether a caller presentation says "do not show my number" (the caller's privacy).

    AMI's ``CID-CallingPres`` and AGI's ``agi_callingpres`` give the number (Q.931 bits 6-7:
    0x20 restricted), ``CALLERID(pres)`` in the dialplan a name:

    >>> restricted("35 (Presentation Prohibited, Network Number)"), restricted("32")
    (True, True)
    >>> restricted("prohib_not_screened"), restricted("0 (Presentation Allowed, Not Screened)")
    (True, False)
    >>> restricted("67"), restricted("allowed"), restricted(None), restricted("junk")
    (False, False, False, False)
    """
    if not presentation:
        return False
    text = presentation.strip().lower()
    if text.startswith("prohib"):
        return True
    first = text.split(" ", 1)[0]
    return first.isdigit() and int(first) & 0x60 == 0x20
