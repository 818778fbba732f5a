"""Text bodies: a reminder costs at most two segments in every language, with long real values."""

import datetime as dt
from dataclasses import astuple
from zoneinfo import ZoneInfo

import pytest

import prompts
from ivr.messaging.segments import count, plain
from prompts.spoken import spoken_date, spoken_location, spoken_provider, spoken_time, written_number

# The longest a name, a date and a time get in the demo's kind of clinic (a Wednesday in
# September is the longest English date; a zone is named for a patient elsewhere).
LONG = dt.datetime(2026, 9, 30, 11, 45, tzinfo=ZoneInfo("America/New_York"))


def values(language):
    catalogue = prompts.load(language)
    return {"clinic": "Riverside Family Clinic", "clinic_phone": written_number("+12125550100"),
            "first_name": "Guadalupe", "date": spoken_date(LONG, "America/New_York", catalogue),
            "time": spoken_time(LONG, "America/New_York", "America/Los_Angeles", catalogue),
            "location": spoken_location("Main Street", catalogue),
            "provider": spoken_provider("Amara Patel", "doctor", catalogue)}


@pytest.mark.parametrize("language", prompts.available_languages())
@pytest.mark.parametrize("key", ["sms.reminder", "sms.reminder_private"])
def test_a_reminder_text_costs_at_most_two_segments_in_every_language(language, key):
    text = plain(prompts.load(language).text(key, values(language)))
    assert count(text).count <= 2, (count(text), text)


@pytest.mark.parametrize("language", prompts.available_languages())
def test_every_text_fits_three_segments(language):
    catalogue = prompts.load(language)
    for key in (k for k in catalogue.texts if k.startswith("sms.")):
        assert count(plain(catalogue.text(key, values(language)))).count <= 3, key


@pytest.mark.parametrize("text,encoding,units,segments", [
    ("", "gsm7", 0, 0),
    ("a" * 160, "gsm7", 160, 1),
    ("a" * 161, "gsm7", 161, 2),
    ("a" * 306, "gsm7", 306, 2),
    ("a" * 307, "gsm7", 307, 3),
    ("é" * 160, "gsm7", 160, 1),          # é is in GSM-7's basic table
    ("€" * 80, "gsm7", 160, 1),           # the euro sign takes two places
    ("á" * 70, "ucs2", 70, 1),            # á is not in GSM-7: the whole text is UCS-2
    ("á" * 71, "ucs2", 71, 2),
    ("😀" * 35, "ucs2", 70, 1),           # an emoji is two UTF-16 units
    ("예약" * 34, "ucs2", 68, 1),
])
def test_segments_follow_the_gsm7_and_ucs2_rules(text, encoding, units, segments):
    assert astuple(count(text)) == (encoding, units, segments)


def test_typography_is_made_plain_so_one_apostrophe_does_not_make_a_text_ucs2():
    text = "Rendez-vous à 11 h 45, heure de l’Est – merci"
    assert count(text).encoding == "ucs2"
    assert plain(text) == "Rendez-vous à 11 h 45, heure de l'Est - merci" and count(plain(text)).encoding == "gsm7"
