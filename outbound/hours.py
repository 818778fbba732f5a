"""Calling hours: when a patient may be rung, in the patient's own time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def next_call_time(now: dt.datetime, timezone: str, start: dt.time, end: dt.time) -> dt.datetime:
    """`now` if it falls inside [start, end) local time, else the next local `start` (in UTC)."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    if start <= local.time() < end:
        return now
    day = local.date() if local.time() < start else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, start, zone).astimezone(dt.timezone.utc)
