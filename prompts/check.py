"""Checks every catalogue against English: same keys, same placeholders, patterns Babel accepts,
and English prompts at or below grade 6 (Flesch-Kincaid, measured by textstat)."""

from __future__ import annotations

import datetime as dt
import string

import prompts

MAX_GRADE = 6.0
# Short neutral values: the grade should judge our wording, not a clinic's long name.
SAMPLE_VALUES = {"clinic": "the clinic", "clinic_phone": "5 5 5, 1 2 3 4", "first_name": "Jane",
                 "date": "May 3", "time": "9 AM", "location": "at the office", "provider": "Doctor Lee",
                 "name": "Lee", "medication": "insulin", "medication_1": "insulin", "medication_2": "aspirin", "medication_3": "statin",
                 "opens": "Monday at 8 AM", "ahead": "3", "wait_minutes": "4"}


def problems() -> list[str]:
    """Everything wrong with the catalogues, one readable line each; empty when all is well."""
    import warnings

    from babel.dates import format_date, format_time
    with warnings.catch_warnings():  # textstat 0.7.4 imports pkg_resources (see pyproject.toml)
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import textstat

    found: list[str] = []
    english = prompts.load("en")
    for language in prompts.available_languages():
        catalogue = prompts.load(language)
        missing = sorted(set(english.texts) - set(catalogue.texts))
        extra = sorted(set(catalogue.texts) - set(english.texts))
        found += [f"{language}: missing {key}" for key in missing]
        found += [f"{language}: {key} is not in en (unused key?)" for key in extra]
        for key in sorted(set(english.texts) & set(catalogue.texts)):
            if catalogue.placeholders(key) != english.placeholders(key):
                found.append(f"{language}: {key} has placeholders {sorted(catalogue.placeholders(key))}, "
                             f"en has {sorted(english.placeholders(key))}")
        try:
            moment = dt.datetime(2026, 3, 2, 9, 30)
            format_date(moment, catalogue.date_format, locale=catalogue.locale)
            format_time(moment, catalogue.time_format, locale=catalogue.locale)
        except Exception as exc:  # noqa: BLE001 - any Babel complaint is a catalogue problem
            found.append(f"{language}: date or time pattern rejected by Babel: {exc}")
        zoned = {name for _, name, _, _ in string.Formatter().parse(catalogue.zoned_time) if name}
        if zoned != {"time", "zone"}:
            found.append(f"{language}: zoned_time must use {{time}} and {{zone}}, not {sorted(zoned)}")
    keys = {}
    for language in prompts.available_languages():
        catalogue = prompts.load(language)
        if catalogue.choice_key in keys:
            found.append(f"{language}: choice_key {catalogue.choice_key} is {keys[catalogue.choice_key]}'s too")
        keys[catalogue.choice_key] = language
        offer = catalogue.texts.get("inbound.language_offer", "")
        if catalogue.choice_key not in offer:
            found.append(f"{language}: inbound.language_offer does not say its key {catalogue.choice_key}")
    from prompts.spoken import PROVIDER_TITLES
    found += [f"en: no phrases.{title} to say a provider's title" for title in PROVIDER_TITLES
              if f"phrases.{title}" not in english.texts]
    for key in sorted(english.texts):
        grade = textstat.flesch_kincaid_grade(english.text(key, SAMPLE_VALUES))
        if grade > MAX_GRADE:
            found.append(f"en: {key} reads at grade {grade:.1f} (at most {MAX_GRADE:.0f})")
    return found
