"""How values are said in a catalogue's language: dates, times (with their zone when the listener
lives in another one) and phone numbers. Pure functions of their arguments: no database, no app."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import phonenumbers
from babel.dates import format_date, format_time, get_timezone_name

from prompts import Catalogue

# CLDR falls back to an offset ("GMT-10:00") when a zone has no generic name; nobody says that.
_OFFSET_NAME = re.compile(r"(GMT|UTC)([+-]\d|$)")


def spoken_date(moment: dt.datetime, place_zone: str, catalogue: Catalogue) -> str:
    """The day of `moment` where it happens, e.g. 'Thursday, December 3'."""
    return format_date(moment.astimezone(ZoneInfo(place_zone)), catalogue.date_format,
                       locale=catalogue.locale)


def spoken_time(moment: dt.datetime, place_zone: str, listener_zone: str, catalogue: Catalogue) -> str:
    """The clock time of `moment` where it happens ('9:30 AM'): a visit is at the time on the wall
    of the place. When the listener's clocks show another time then, the zone is named too
    ('9:30 AM Eastern Time'), so nobody converts it in their head or turns up at the wrong hour."""
    local = moment.astimezone(ZoneInfo(place_zone))
    said = format_time(local, catalogue.time_format, locale=catalogue.locale)
    if moment.astimezone(ZoneInfo(listener_zone)).utcoffset() == local.utcoffset():
        return said
    return catalogue.zoned_time.format(time=said, zone=zone_name(local, catalogue))


def zone_name(local: dt.datetime, catalogue: Catalogue) -> str:
    """The zone of an aware datetime as people say it in the catalogue's language: the generic
    name ('Eastern Time', 'hora del Pacífico'), else the specific one ('Hawaii Time')."""
    generic = get_timezone_name(local, width="long", zone_variant="generic", locale=catalogue.locale)
    if not _OFFSET_NAME.match(generic):
        return generic
    return get_timezone_name(local, width="long", locale=catalogue.locale)


def speakable_number(e164: str) -> str:
    """A phone number read digit by digit in its national groups: '5 5 5, 0 1 0 0'."""
    national = phonenumbers.format_number(phonenumbers.parse(e164, None),
                                          phonenumbers.PhoneNumberFormat.NATIONAL)
    return ", ".join(" ".join(group) for group in re.findall(r"\d+", national))


def written_number(e164: str) -> str:
    """A phone number as people write it in its own country: '(212) 555-0100'."""
    return phonenumbers.format_number(phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.NATIONAL)


# Titles a provider may be given; each catalogue says them its own way ("phrases.doctor").
PROVIDER_TITLES = ("doctor",)


def spoken_location(name: str, catalogue: Catalogue) -> str:
    """Where a visit happens, built around the location's proper name: 'at the Main Street
    office', 'en el consultorio de Main Street'."""
    return catalogue.text("phrases.at_location", {"name": name})


def spoken_provider(name: str, title: str | None, catalogue: Catalogue) -> str:
    """Who the visit is with: the provider's name with their title as the language says it
    ('Doctor Amara Patel', 'le docteur Amara Patel'), or the name alone when they have none."""
    if title is None:
        return name
    return catalogue.text(f"phrases.{title}", {"name": name})
