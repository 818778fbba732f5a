"""Digit strings and dates said aloud, turned into values, in English, Spanish and French.

For the inbound line's date-of-birth check and for menus without a keypad. An engine that can
transcribe (Whisper) writes down what was said after a short prompt that shows the form expected
("March 4, 1952."); the transcript is then read here, whether the model wrote numerals ("4th of
March 1952", "4 de marzo de 1952") or words ("one nine five two", "dix-neuf cent cinquante-deux").
The confidence is the transcript's mean token probability, and 0 when no value could be read.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from speech.audio import Audio
from speech.common import SpeechError

LANGUAGES = ("en", "es", "fr")

# Prompts that show the model the form of the answer expected (no particular value: a prompt's
# numbers would be copied into the answers of unclear speech).
PROMPTS = {
    "digits": {language: "3 0 8, 6 1 7." for language in ("en", "es", "fr")},
    "date": {"en": "Date of birth:", "es": "Fecha de nacimiento:", "fr": "Date de naissance :"},
}

MONTHS = {
    "en": ["january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
           "octubre", "noviembre", "diciembre"],
    "fr": ["janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre",
           "octobre", "novembre", "decembre"],
}
EXTRA_MONTHS = {"es": {"setiembre": 9}, "en": {"sept": 9}}

_UNITS = {
    "en": "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
          "fifteen sixteen seventeen eighteen nineteen",
    "es": "cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince "
          "dieciseis diecisiete dieciocho diecinueve",
    "fr": "zero un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize",
}
_TENS = {
    "en": "twenty thirty forty fifty sixty seventy eighty ninety",
    "es": "veinte treinta cuarenta cincuenta sesenta setenta ochenta noventa",
    "fr": "vingt trente quarante cinquante soixante",
}
_EXTRA_WORDS = {
    "en": {"oh": 0, "o": 0, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
           "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
           "thirteenth": 13, "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17,
           "eighteenth": 18, "nineteenth": 19, "twentieth": 20, "thirtieth": 30, "hundred": 100,
           "thousand": 1000, "forty": 40, "fourty": 40},
    "es": {"un": 1, "una": 1, "primero": 1, "veintiuno": 21, "veintiun": 21, "veintidos": 22,
           "veintitres": 23, "veinticuatro": 24, "veinticinco": 25, "veintiseis": 26,
           "veintisiete": 27, "veintiocho": 28, "veintinueve": 29, "cien": 100, "ciento": 100,
           "doscientos": 200, "trescientos": 300, "cuatrocientos": 400, "quinientos": 500,
           "seiscientos": 600, "setecientos": 700, "ochocientos": 800, "novecientos": 900,
           "mil": 1000},
    "fr": {"une": 1, "premier": 1, "cent": 100, "cents": 100, "mille": 1000, "mil": 1000, "vingts": 20},
}
FILLERS = {"en": {"and", "the", "of", "a"}, "es": {"y", "de", "del", "el"}, "fr": {"et", "le", "de", "du"}}


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower().replace("’", "'"))
    return "".join(c for c in text if not unicodedata.combining(c))


def _words(language: str) -> dict[str, int]:
    table = {w: n for n, w in enumerate(_UNITS[language].split())}
    table.update({w: 20 + 10 * n for n, w in enumerate(_TENS[language].split())})
    table.update(_EXTRA_WORDS[language])
    return table


_TABLES = {language: _words(language) for language in LANGUAGES}
_ORDINAL = re.compile(r"^(\d+)(st|nd|rd|th|er|re|e|eme|o|a|º|ª)$")


def _tokens(text: str, language: str) -> list[tuple[str, object]]:
    """('num', int and its digits) for numerals, ('word', int) for number words, ('month', n), or
    ('other', word)."""
    if language not in _TABLES:
        raise SpeechError(f"spoken numbers and dates are read in {', '.join(LANGUAGES)}, not {language!r}")
    words = _TABLES[language]
    months = {m: n for n, m in enumerate(MONTHS[language], start=1)} | EXTRA_MONTHS.get(language, {})
    out: list[tuple[str, object]] = []
    text = re.sub(r"(\d)[.,](\d{3})\b", r"\1\2", _plain(text))  # 1.950, 1,950
    for raw in re.split(r"[\s,.;:!?\-/()\"']+", text):
        if not raw:
            continue
        ordinal = _ORDINAL.match(raw)
        if raw.isdigit() or ordinal:
            digits = ordinal.group(1) if ordinal else raw
            out.append(("num", digits))
        elif raw in months:
            out.append(("month", months[raw]))
        elif raw in words:
            out.append(("word", words[raw]))
        elif raw in FILLERS[language]:
            out.append(("filler", raw))
        else:
            out.append(("other", raw))
    return out


def _groups(tokens: list[tuple[str, object]], language: str) -> list[tuple[int, str, str]]:
    """Numbers in order: (value, how it was written: 'num' or 'word', the digits as written)."""
    groups: list[tuple[int, str, str]] = []
    total = current = None

    def flush() -> None:
        nonlocal total, current
        if current is not None or total is not None:
            value = (total or 0) + (current or 0)
            groups.append((value, "word", str(value)))
        total = current = None

    for kind, value in tokens:
        if kind == "num":
            flush()
            groups.append((int(value), "num", value))
            continue
        if kind == "filler" and (current is not None or total is not None):
            continue  # "cincuenta y dos", "vingt et un", "two thousand and five"
        if kind != "word":
            flush()
            continue
        v = int(value)
        if v == 1000:
            total, current = (total or 0) + max(current or 0, 1) * 1000, None
        elif v == 100:
            current = max(current or 0, 1) * 100 if (current or 0) < 100 else current * 100
        elif current is None:
            current = v
        elif language == "fr" and v == 20 and current % 100 == 4:
            current += 76                      # quatre-vingt(s) = 80
        elif current % 100 in (10,) and language == "fr" and 0 < v < 10:
            current += v                        # dix-sept
        elif language == "fr" and current % 100 in (60, 80) and 10 <= v < 20:
            current += v                        # soixante-dix, quatre-vingt-dix
        elif current % 10 == 0 and current % 100 >= 20 and 0 < v < 10:
            current += v                        # fifty two
        elif current >= 100 and current % 100 == 0 and v < 100:
            current += v                        # nine hundred fifty / neuf cent cinquante
        elif v >= 100 and current == 0:
            current = v
        else:
            flush()
            current = v
    flush()
    return groups


def digits_in(text: str, language: str) -> str | None:
    """The digits said, in order ("one nine five two", "1952", "19 52" -> "1952"); None when
    anything else was said."""
    tokens = _tokens(text, language)
    if not tokens or any(kind == "other" for kind, _ in tokens):
        return None
    groups = _groups(tokens, language)
    return "".join(written for _value, _kind, written in groups) or None


def date_in(text: str, language: str, today: dt.date | None = None) -> dt.date | None:
    """The date said ("March fourth, nineteen fifty-two", "the 4th of March 1952", "4 de marzo de
    1952", "quatre mars dix-neuf cent cinquante-deux", "03/04/1952"); None when none can be read.
    Two-digit years are the last century's when they would otherwise be in the future."""
    today = today or dt.date.today()
    tokens = _tokens(text, language)
    month_at = next((i for i, (kind, _) in enumerate(tokens) if kind == "month"), None)
    if month_at is None:
        return _numeric_date(text, language, today)
    month = int(tokens[month_at][1])
    before = [g[0] for g in _groups(tokens[:month_at], language)]
    after = [g[0] for g in _groups(tokens[month_at + 1:], language)]
    if before and before[-1] <= 31:
        day, rest = before[-1], after
    elif after and after[0] <= 31:
        day, rest = after[0], after[1:]
    else:
        return None
    year = _year(rest, today)
    return _valid(year, month, day)


def _year(numbers: list[int], today: dt.date) -> int | None:
    """A year from what was said after the day: 1952, [19, 52], [19, 0, 5], [52]."""
    if not numbers:
        return None
    if numbers[0] >= 1000:
        return numbers[0]
    if len(numbers) >= 2 and 10 <= numbers[0] <= 20 and numbers[1] < 100:
        tail = numbers[1] if numbers[1] >= 10 or len(numbers) == 2 else numbers[1] * 10 + numbers[2]
        return numbers[0] * 100 + tail
    if numbers[0] < 100:
        century = 2000 if 2000 + numbers[0] <= today.year else 1900
        return century + numbers[0]
    return None


def _numeric_date(text: str, language: str, today: dt.date) -> dt.date | None:
    found = re.search(r"(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{2,4})", text)
    if not found:
        return None
    first, second, year = (int(n) for n in found.groups())
    month, day = (first, second) if language == "en" else (second, first)
    return _valid(_year([year], today), month, day)


def _valid(year: int | None, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day) if year is not None else None
    except ValueError:
        return None


def _keeper(words: set[str]):
    """Accepts a token that is part of a number or of one of words (or punctuation)."""
    pieces = {w[i:j] for w in words for i in range(len(w)) for j in range(i + 1, len(w) + 1)}

    def keep(token: str) -> bool:
        return token == "" or bool(re.fullmatch(r"[\d.,\-/]+", token)) or token in pieces
    return keep


KEEP = {("digits", language): _keeper(set()) for language in LANGUAGES} | {
    ("date", language): _keeper(set(MONTHS[language]) | set(EXTRA_MONTHS.get(language, {}))
                                | FILLERS[language] | {"st", "nd", "rd", "th", "er", "o", "a"})
    for language in LANGUAGES}


@dataclass(frozen=True)
class SpokenValue:
    """A value read from speech: `value` is None when nothing usable was said."""

    kind: str                         # "digits" or "date"
    value: str | dt.date | None
    text: str                         # what the engine wrote down
    confidence: float                 # the transcript's mean token probability; 0 without a value
    engine: str
    audio_seconds: float
    processing_seconds: float


def recognize_value(engine, audio: Audio, kind: str, length: int | None = None) -> SpokenValue:
    """Digits (`length` of them, when given) or a date from a spoken answer, with a confidence.
    The engine must be able to transcribe (Whisper)."""
    if kind not in PROMPTS:
        raise SpeechError(f"a spoken value is digits or date, not {kind!r}")
    language = engine.language
    if language not in LANGUAGES:
        raise SpeechError(f"spoken numbers and dates are read in {', '.join(LANGUAGES)}, not {language!r}")
    transcribe = getattr(engine, "transcribe", None)
    if transcribe is None:
        raise SpeechError(f"the {engine.name} engine cannot read spoken numbers or dates (Whisper can)")
    heard = transcribe(audio, PROMPTS[kind][language], KEEP[kind, language])
    if kind == "digits":
        value = digits_in(heard.text, language)
        if value is not None and length is not None and len(value) != length:
            value = None
    else:
        value = date_in(heard.text, language)
    return SpokenValue(kind, value, heard.text, heard.confidence if value is not None else 0.0,
                       engine.name, heard.audio_seconds, heard.processing_seconds)
