"""When a clinic's line is staffed: its opening hours per weekday on its own clock, less its
country's public holidays (the `holidays` package, with the clinic's state or province) and the
days it closes on its own. A clinic with no opening hours set is always open."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.models import Clinic, ClinicClosure, OpeningHours
from ivr.tasks import country_of, public_holidays

# How far ahead to look for the next opening (a clinic closed longer says no time).
LOOKAHEAD_DAYS = 21


@dataclass(frozen=True)
class Hours:
    """A clinic's week, its closed days and its zone."""

    zone: str
    week: dict[int, tuple[tuple[dt.time, dt.time], ...]]   # weekday -> (opens, closes) spans
    closed: frozenset[dt.date]
    country: str | None
    subdivision: str | None

    def is_closed_day(self, day: dt.date) -> bool:
        """A public holiday or one of the clinic's own closures."""
        return day in self.closed or day in public_holidays(self.country, self.subdivision)

    def is_open(self, now: dt.datetime) -> bool:
        """Whether the line is staffed at this moment."""
        local = now.astimezone(ZoneInfo(self.zone))
        if self.is_closed_day(local.date()):
            return False
        return any(opens <= local.time() < closes for opens, closes in self.week.get(local.weekday(), ()))

    def next_opening(self, now: dt.datetime) -> dt.datetime | None:
        """The next moment the line opens after `now` (UTC), or None within LOOKAHEAD_DAYS."""
        zone = ZoneInfo(self.zone)
        local = now.astimezone(zone)
        for offset in range(LOOKAHEAD_DAYS + 1):
            day = local.date() + dt.timedelta(days=offset)
            if self.is_closed_day(day):
                continue
            for opens, _closes in sorted(self.week.get(day.weekday(), ())):
                moment = dt.datetime.combine(day, opens, zone)
                if moment > local:
                    return moment.astimezone(dt.timezone.utc)
        return None


def hours_of(session: Session, clinic_id: int) -> Hours | None:
    """A clinic's hours, or None when it has set none (always open)."""
    spans = session.execute(select(OpeningHours.weekday, OpeningHours.opens, OpeningHours.closes)
                            .where(OpeningHours.clinic_id == clinic_id)).all()
    if not spans:
        return None
    clinic = session.get(Clinic, clinic_id)
    week: dict[int, list[tuple[dt.time, dt.time]]] = {}
    for weekday, opens, closes in spans:
        week.setdefault(weekday, []).append((opens, closes))
    closed = frozenset(session.scalars(select(ClinicClosure.day).where(ClinicClosure.clinic_id == clinic_id)))
    return Hours(clinic.timezone, {d: tuple(sorted(s)) for d, s in week.items()}, closed,
                 clinic.holiday_country or country_of(clinic.phone), clinic.holiday_subdivision)
