"""Calling hours: when a patient may be rung, in the patient's own time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ivr.models import Patient


def next_call_time(now: dt.datetime, timezone: str, start: dt.time, end: dt.time) -> dt.datetime:
    """`now` if it falls inside [start, end) local time, else the next local `start` (in UTC)."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    if start <= local.time() < end:
        return now
    day = local.date() if local.time() < start else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, start, zone).astimezone(dt.timezone.utc)


def ring_time(patient: Patient, now: dt.datetime) -> dt.datetime:
    """The first moment from now at which the patient's clinic may ring them, in their time zone."""
    clinic = patient.clinic
    return next_call_time(now, patient.timezone or clinic.timezone, clinic.calls_from, clinic.calls_until)
