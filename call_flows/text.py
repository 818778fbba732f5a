"""Text that can travel in TwiML and be read aloud: XML 1.0 cannot carry NUL, most other C0
controls, unpaired surrogates, U+FFFE or U+FFFF, and a name holding one would make the whole
answer unreadable to the carrier (a caller then hears Twilio's "application error")."""

from __future__ import annotations

import re

# Everything XML 1.0 forbids (its Char production), plus the C1 controls, which are never text.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_SPACES = re.compile(r"\s+")


def xml_safe(text: str) -> str:
    """The text without characters XML cannot carry (each becomes a space, so words stay apart)."""
    return _NOT_XML.sub(" ", text)


def clean_name(text: str) -> str:
    """A name or label as it should be stored: XML-safe, one space between words, no padding."""
    return _SPACES.sub(" ", xml_safe(text)).strip()
