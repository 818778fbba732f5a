"""Calling hours: when a patient may be contacted, in the patient's own time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ivr.models import Patient

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def next_call_time(now: dt.datetime, timezone: str, start: dt.time, end: dt.time) -> dt.datetime:
    """`now` if it falls inside [start, end) local time, else the next local `start` (in UTC)."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    if start <= local.time() < end:
        return now
    day = local.date() if local.time() < start else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, start, zone).astimezone(dt.timezone.utc)


FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_days(spec: str | None) -> frozenset[int]:
    """Weekday numbers (Monday 0) from 'sat,sun' or 'saturday,sunday'; ValueError names an
    unknown day."""
    days = set()
    for name in filter(None, (part.strip().lower() for part in (spec or "").split(","))):
        if name in WEEKDAYS:
            days.add(WEEKDAYS.index(name))
        elif name in FULL_WEEKDAYS:
            days.add(FULL_WEEKDAYS.index(name))
        else:
            raise ValueError(f"unknown weekday {name!r}: use {', '.join(WEEKDAYS)}")
    return frozenset(days)


def contact_time(patient: Patient, at: dt.datetime) -> dt.datetime:
    """The first moment from `at` at which the patient may be contacted: inside the clinic's calling
    hours in the patient's time zone, on none of the days they asked to be left alone, and not
    before their first day for outreach."""
    clinic = patient.clinic
    zone = ZoneInfo(patient.timezone or clinic.timezone)
    days_off = parse_days(patient.no_contact_days)
    if patient.contact_not_before is not None:
        first = dt.datetime.combine(patient.contact_not_before, dt.time(0), zone).astimezone(dt.timezone.utc)
        at = max(at, first)
    for _ in range(8):  # a week holds every weekday; at most one more for the first day's hours
        at = next_call_time(at, zone.key, clinic.calls_from, clinic.calls_until)
        local = at.astimezone(zone)
        if local.weekday() not in days_off:
            return at
        at = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), zone).astimezone(dt.timezone.utc)
    raise ValueError("the patient asked not to be contacted on any day")
