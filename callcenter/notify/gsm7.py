"""SMS text in the GSM 7-bit alphabet: 160 septets a message, or numbered parts of 160 each.

A character outside GSM-7 would switch the whole SMS to UCS-2 (70 characters), so text is
transliterated first; the extension characters (``{ } [ ] ~ \\ | ^ €``) take two septets.

>>> septets("Kejadian 12 [kebakaran]")
25
>>> to_gsm7("Jl. \\u201cSudirman\\u201d \\u2013 dekat pasar")
'Jl. "Sudirman" - dekat pasar'
>>> [septets(p) for p in split("kata " * 70)]
[158, 158, 43]
>>> split("kata " * 70)[1][:8]
'2/3 kata'
"""

from __future__ import annotations

import unicodedata

BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = frozenset("^{}\\[~]|€\f")
SINGLE_SMS = 160

_REPLACE = {
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2018": "'",
    "\u2019": "'",
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
    "\t": " ",
    "\u00a0": " ",
    "°": "o",
    "`": "'",
}


def to_gsm7(text: str) -> str:
    """The text with every character made GSM-7 (accents dropped, others replaced by '?')."""
    out = []
    for char in text:
        if char in BASIC or char in EXTENSION:
            out.append(char)
            continue
        char = _REPLACE.get(char, char)
        if all(c in BASIC or c in EXTENSION for c in char):
            out.append(char)
            continue
        plain = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        out.append(plain if plain and all(c in BASIC for c in plain) else "?")
    return "".join(out)


def septets(text: str) -> int:
    return sum(2 if c in EXTENSION else 1 for c in text)


def split(text: str, limit: int = SINGLE_SMS) -> list[str]:
    """One SMS if it fits, else parts ``1/n ...``, each within ``limit`` septets.

    Parts are cut at spaces where one lies in the part's second half, so words stay whole.
    Each part is a message of its own (no concatenation header), which every modem, gateway
    and phone shows in order.
    """
    text = to_gsm7(text).strip()
    if septets(text) <= limit:
        return [text]
    count = 2
    while True:
        parts = _cut(text, limit - septets(f"{count}/{count} "))
        if len(parts) <= count:
            return [f"{i}/{len(parts)} {p}" for i, p in enumerate(parts, 1)]
        count = len(parts)


def _cut(text: str, room: int) -> list[str]:
    parts = []
    while text:
        used = 0
        end = 0
        for end, char in enumerate(text, 1):
            used += 2 if char in EXTENSION else 1
            if used > room:
                end -= 1
                break
        if end >= len(text):
            parts.append(text)
            break
        space = text.rfind(" ", 0, end + 1)
        if space > end // 2:
            end = space
        parts.append(text[:end].rstrip())
        text = text[end:].lstrip()
    return parts
