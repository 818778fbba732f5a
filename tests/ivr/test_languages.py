"""Every prompt reads as its own language: the values the server puts into it (place, provider,
date, time, zone) are built by each language, so a Spanish patient never hears "the Main Street
office" or "Doctor Patel" in the middle of a Spanish sentence."""

import re

import pytest
from sqlalchemy import select

import prompts
from ivr.calls import text_context, touch_context, touch_row
from ivr.models import Appointment, Clinic, Location, Patient

# The demo's proper names: said as they are in every language.
PROPER_NAMES = ("Riverside Family Clinic", "Jane", "Main Street", "Amara Patel")
# Medications are said as the patient knows them (an inbound caller's prescriptions, a refill prompt's).
MEDICATIONS = ("metformin", "lisinopril", "atorvastatin")
# Words spelled the same in English and in the language, each meaning the same thing there.
SAME_IN_BOTH = {"es": {"no", "use"},
                "fr": {"message", "messages", "service", "date", "question", "on", "urgent", "patient", "menu", "place",
                       "minute", "minutes"},
                "ko": set()}
# The opt-out keywords carriers act on themselves are English words in every language's texts.
CARRIER_KEYWORDS = {"stop", "start"}
OTHER_LANGUAGES = [language for language in prompts.available_languages() if language != "en"]


def rendered(session, touch_id: int, language: str) -> dict[str, str]:
    """Every prompt of a language, with the demo appointment's values as calls and texts fill
    them; Jane lives in Chicago, so times name the clinic's zone."""
    patient = session.scalars(select(Patient).where(Patient.first_name == "Jane")).one()
    patient.language, patient.timezone = language, "America/Chicago"
    session.flush()
    _flow, call = touch_context(session, touch_id)
    text = text_context(touch_row(session, touch_id))
    assert call.catalogue.language == language
    out = {}
    for key in call.catalogue.texts:
        if key.startswith("phrases."):   # the pieces of values, checked inside them
            continue
        context = text if key.startswith("sms.") else call
        values = {**context.values, **{f"medication_{n}": name for n, name in enumerate(MEDICATIONS, 1)},
                  "medication": MEDICATIONS[0],   # a refill prompt's, as its touch's row fills it
                  "ahead": "3", "wait_minutes": "4",   # the queue's place and wait, as its wait URL fills them
                  "opens": context.catalogue.text("phrases.when", {"date": context.values["date"],
                                                                   "time": context.values["time"]})}
        out[key] = context.catalogue.text(key, values)
    return out


def words(text: str) -> set[str]:
    """The words of a prompt once the proper names are taken out, in lower case; single letters
    ('Reply C', 'a. m.') say nothing about the language."""
    for name in (*PROPER_NAMES, *MEDICATIONS):
        text = text.replace(name, " ")
    return {w.lower() for w in re.findall(r"[^\W\d_]{2,}", text)}


@pytest.fixture
def english(sessions, demo) -> set[str]:
    """Every word an English patient can hear or read, from the same code and data."""
    with sessions.begin() as session:
        return set().union(*(words(t) for t in rendered(session, demo.touch_id, "en").values()))


def test_the_demo_still_has_the_names_this_test_takes_out(sessions, demo):
    """If the demo data changed, the proper names above would silently stop matching."""
    with sessions() as session:
        appointment = session.get(Appointment, demo.appointment_id)
        assert (session.get(Clinic, appointment.patient.clinic_id).name, appointment.patient.first_name,
                session.get(Location, appointment.location_id).name, appointment.provider_name) == PROPER_NAMES


def test_english_prompts_carry_the_values_this_test_looks_for(english):
    """The values spoken in English bring their English words: were they missing, the test
    below would find no leaks for the wrong reason."""
    assert {"office", "doctor", "eastern", "time"} <= english


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_no_english_words_in_other_languages_except_proper_names(sessions, demo, english, language):
    with sessions.begin() as session:
        texts = rendered(session, demo.touch_id, language)
    leaks = {key: sorted((words(text) & english) - SAME_IN_BOTH[language] - CARRIER_KEYWORDS)
             for key, text in texts.items()}
    assert {key: found for key, found in leaks.items() if found} == {}


@pytest.mark.parametrize("language", prompts.available_languages())
def test_the_details_name_place_and_provider_in_the_languages_own_words(sessions, demo, language):
    with sessions.begin() as session:
        details = rendered(session, demo.touch_id, language)["reminder.details"]
    expected = {"en": ("at the Main Street office", "with Doctor Amara Patel."),
                "es": ("en el consultorio de Main Street", "con su médico, Amara Patel."),
                "fr": ("au cabinet de Main Street", "avec le docteur Amara Patel."),
                "ko": ("Main Street 진료소에서", "Amara Patel 선생님 진료 예약이 있습니다.")}[language]
    assert expected[0] in details and details.endswith(expected[1]), details


def test_a_provider_without_a_title_is_named_alone(sessions, demo):
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).provider_title = None
        session.flush()
        details = rendered(session, demo.touch_id, "es")["reminder.details"]
    assert details.endswith(", con Amara Patel."), details


def test_an_unknown_provider_title_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown provider title 'nurse': use one of doctor, or none"):
        Appointment(provider_title="nurse")
