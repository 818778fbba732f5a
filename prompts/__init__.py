"""Prompt catalogues: one TOML file per language, the same keys in each, text never in flow code."""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Mapping


class PromptError(Exception):
    """A catalogue or prompt key is missing, or a placeholder has no value."""


@dataclass(frozen=True)
class Catalogue:
    """The prompts of one language, flattened to dotted keys like 'reminder.menu'."""

    language: str
    locale: str
    say_language: str
    date_format: str   # Babel (CLDR) patterns: how a date and a time are said in this language
    time_format: str
    zoned_time: str    # a time with its zone named, from {time} and {zone} ("{time} {zone}")
    tts_voice: str     # the local synthesiser's voice (an espeak-ng voice id)
    tts_rate: int      # its words per minute when the patient has no rate of their own
    texts: Mapping[str, str]
    choice_key: str = ""  # the key that picks this language on the inbound line

    def text(self, key: str, values: Mapping[str, object]) -> str:
        """The prompt for key with its placeholders filled from values."""
        try:
            template = self.texts[key]
        except KeyError:
            raise PromptError(f"prompt {key!r} is missing from the {self.language!r} catalogue") from None
        try:
            return template.format_map(values)
        except KeyError as exc:
            raise PromptError(f"prompt {key!r} needs a value for {exc.args[0]!r}") from None

    def placeholders(self, key: str) -> set[str]:
        """The names a prompt expects, e.g. {'clinic'}."""
        return {name for _, name, _, _ in string.Formatter().parse(self.texts[key]) if name}


@cache
def available_languages() -> tuple[str, ...]:
    """Language codes that have a catalogue file."""
    return tuple(sorted(p.name[:-5] for p in resources.files(__package__).iterdir()
                  if p.name.endswith(".toml")))


def first_available(*languages: str | None) -> Catalogue:
    """The catalogue of the first language in order that has one, else English."""
    known = available_languages()
    for language in languages:
        if language in known:
            return load(language)
    return load("en")


@cache
def load(language: str) -> Catalogue:
    """Load and cache the catalogue of a language ('en', 'es', ...)."""
    source = resources.files(__package__) / f"{language}.toml"
    if not source.is_file():
        raise PromptError(f"no prompt catalogue for language {language!r}")
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    meta = data.pop("meta")
    texts: dict[str, str] = {}
    for section, entries in data.items():
        for name, text in entries.items():
            texts[f"{section}.{name}"] = " ".join(text.split())
    return Catalogue(language=language, locale=meta["locale"], say_language=meta["say_language"],
                     date_format=meta["date_format"], time_format=meta["time_format"],
                     zoned_time=meta["zoned_time"],
                     tts_voice=meta["tts_voice"], tts_rate=int(meta["tts_rate"]), texts=texts,
                   choice_key=str(meta["choice_key"]))


def language_choices() -> dict[str, str]:
    """{key: language} for the inbound line's language offer."""
    return {load(language).choice_key: language for language in available_languages()}
