"""Tasks: work a person owes a patient. Opened in the same transaction as the decision that
promised it (a prompt saying "someone will call you"), listed and closed by staff."""

from __future__ import annotations

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo

import holidays
import phonenumbers
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.orm import Session

from ivr.models import Task, utcnow

_TASK = Task.__table__


def due_at(now: dt.datetime, zone: str, clinic_phone: str | None, business_days: int,
           country: str | None = None, subdivision: str | None = None) -> dt.datetime:
    """`business_days` working days after `now` in the clinic's zone (weekends and the public
    holidays of the clinic's country skipped: `country` and `subdivision` as the clinic set them,
    else the country of its number), at the same local time; 0 is now."""
    if business_days <= 0:
        return now
    local = now.astimezone(ZoneInfo(zone))
    day, left = local.date(), business_days
    off = public_holidays(country or country_of(clinic_phone), subdivision if country else None)
    while left:
        day += dt.timedelta(days=1)
        if day.weekday() < 5 and day not in off:
            left -= 1
    return dt.datetime.combine(day, local.timetz().replace(tzinfo=None), ZoneInfo(zone)).astimezone(dt.timezone.utc)


def country_of(phone: str | None) -> str | None:
    """The country a clinic's number belongs to (its public holidays are the clinic's)."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone or "", None))
    except phonenumbers.NumberParseException:
        return None


@cache
def public_holidays(country: str | None, subdivision: str | None = None):
    """The public holidays of a country and, when given, its state or province ({} for none we
    know)."""
    try:
        return holidays.country_holidays(country, subdiv=subdivision) if country else {}
    except NotImplementedError:
        return {}


def open_task(connection: Connection, *, kind: str, due: dt.datetime, clinic_id: int | None,
              patient_id: int | None = None, appointment_id: int | None = None,
              call_id: int | None = None, phone: str | None = None, message_id: int | None = None,
              prescription_id: int | None = None, voicemail: str | None = None) -> int:
    """Open a task (a Core insert: it runs inside a webhook turn); returns its id. A refill asked
    for ends the prescription's refill prompts still waiting: nobody is asked again."""
    now = utcnow()
    if kind == "refill_request" and prescription_id is not None:
        from ivr import touches

        touches.end_refill_prompts(connection, prescription_id, "refill requested", now)
    return connection.execute(insert(_TASK).values(
        kind=kind, due_at=due, clinic_id=clinic_id, patient_id=patient_id, appointment_id=appointment_id,
        call_id=call_id, phone=phone, message_id=message_id, prescription_id=prescription_id,
        voicemail=voicemail, status="open", created_at=now)).inserted_primary_key[0]


def open_tasks(session: Session, clinic_id: int | None = None) -> list[Task]:
    """Open tasks, the oldest due first."""
    query = select(Task).where(Task.status == "open").order_by(Task.due_at, Task.id)
    if clinic_id is not None:
        query = query.where(Task.clinic_id == clinic_id)
    return list(session.scalars(query))


def close_task(session: Session, task_id: int, by: str, status: str = "done") -> bool:
    """Close an open task; False when there is no such open task."""
    return session.execute(update(Task).where(Task.id == task_id, Task.status == "open")
                           .values(status=status, closed_at=utcnow(), closed_by=by[:120])).rowcount == 1
