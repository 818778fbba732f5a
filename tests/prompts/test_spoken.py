"""How values are said: a visit's time on the clock of its place, its zone named for a listener
who lives in another one; dates; phone numbers."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

import prompts
from prompts.spoken import speakable_number, spoken_date, spoken_time

NEW_YORK, LOS_ANGELES = "America/New_York", "America/Los_Angeles"
# 9:30 in New York on a winter day and on a summer day (a zone's name is the same in both).
WINTER = dt.datetime(2026, 12, 3, 9, 30, tzinfo=ZoneInfo(NEW_YORK))
SUMMER = dt.datetime(2026, 7, 2, 9, 30, tzinfo=ZoneInfo(NEW_YORK))


@pytest.mark.parametrize("moment", [WINTER, SUMMER])
@pytest.mark.parametrize("language,same_zone,other_zone", [
    ("en", "9:30 AM", "9:30 AM Eastern Time"),
    ("es", "9:30 a.m.", "9:30 a.m., hora oriental"),
    ("fr", "9 h 30", "9 h 30, heure de l’Est"),
    ("ko", "오전 9:30", "미 동부 시간 오전 9:30"),
])
def test_the_time_is_the_places_and_names_its_zone_only_for_a_listener_elsewhere(
        moment, language, same_zone, other_zone):
    catalogue = prompts.load(language)
    assert spoken_time(moment, NEW_YORK, NEW_YORK, catalogue) == same_zone
    assert spoken_time(moment, NEW_YORK, LOS_ANGELES, catalogue) == other_zone


def test_a_listener_whose_clock_agrees_at_that_moment_hears_no_zone():
    """Phoenix keeps standard time: in winter its clocks match Denver's, in summer Los Angeles'."""
    english = prompts.load("en")
    winter = dt.datetime(2026, 12, 3, 16, 30, tzinfo=dt.timezone.utc)
    summer = dt.datetime(2026, 7, 2, 16, 30, tzinfo=dt.timezone.utc)
    assert spoken_time(winter, "America/Denver", "America/Phoenix", english) == "9:30 AM"
    assert spoken_time(summer, "America/Denver", "America/Phoenix", english) == "10:30 AM Mountain Time"
    assert spoken_time(summer, "America/Phoenix", LOS_ANGELES, english) == "9:30 AM"


def test_a_zone_without_a_generic_name_is_said_by_its_own_name_not_an_offset():
    english = prompts.load("en")
    moment = dt.datetime(2026, 12, 3, 9, 30, tzinfo=ZoneInfo("Pacific/Honolulu"))
    assert spoken_time(moment, "Pacific/Honolulu", LOS_ANGELES, english) == "9:30 AM Hawaii Time"
    utc = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.timezone.utc)
    assert spoken_time(utc, "UTC", NEW_YORK, english) == "9:30 AM Coordinated Universal Time"


def test_the_date_is_the_day_where_the_visit_happens():
    """11 PM in Los Angeles is already the next day in New York: the patient goes by the place."""
    late = dt.datetime(2026, 12, 3, 23, 0, tzinfo=ZoneInfo(LOS_ANGELES))
    english = prompts.load("en")
    assert spoken_date(late, LOS_ANGELES, english) == "Thursday, December 3"
    assert spoken_date(late, NEW_YORK, english) == "Friday, December 4"


def test_phone_numbers_are_read_digit_by_digit_in_their_groups():
    assert speakable_number("+12125550100") == "2 1 2, 5 5 5, 0 1 0 0"


def test_the_first_language_with_a_catalogue_is_chosen_else_english():
    assert prompts.first_available("de", None, "es").language == "es"
    assert prompts.first_available("de").language == "en"
