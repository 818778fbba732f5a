"""How many SMS segments a text costs. A segment holds 160 GSM-7 characters (153 once a text is
split, to leave room for the header), or 70 UCS-2 characters (67 when split); one character
outside GSM-7 (most accents beyond é, any emoji, Korean) makes the whole text UCS-2. Characters of
GSM-7's extension table (^ { } \\ [ ] ~ | €) take two places."""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = set("^{}\\[~]|€\f")


# Typography that looks the same in GSM-7's plain forms (Twilio's "smart encoding" does the
# same): one curly apostrophe from a date format would otherwise make a whole text UCS-2.
_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"',
                        "\u201e": '"', "\u00ab": '"', "\u00bb": '"', "\u2013": "-", "\u2014": "-",
                        "\u2026": "...", "\u00a0": " ", "\u202f": " ", "\u2009": " "})


def plain(text: str) -> str:
    """The text with typographic quotes, dashes and spaces in their GSM-7 forms."""
    return text.translate(_PLAIN)


@dataclass(frozen=True)
class Segments:
    """A text's encoding and cost."""

    encoding: str   # gsm7 or ucs2
    units: int      # GSM-7 septets, or UTF-16 code units
    count: int      # segments the carrier will bill


def count(text: str) -> Segments:
    """The encoding and number of segments of a text."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        single, split = 160, 153
        encoding = "gsm7"
    else:
        units = len(text.encode("utf-16-le")) // 2  # an emoji is two code units
        single, split = 70, 67
        encoding = "ucs2"
    if units <= single:
        return Segments(encoding, units, 1 if units else 0)
    return Segments(encoding, units, -(-units // split))
