"""Decide which contacts to make: one touch per appointment and step, never more."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from ivr.models import Appointment, Patient, Touch
from outbound.hours import ring_time


# The flow each channel's reminder runs.
REMINDER_FLOWS = {"voice": "reminder", "sms": "text_reminder"}


def plan_reminders(session: Session, now: dt.datetime, until: dt.datetime) -> list[Touch]:
    """Create a 'reminder' touch, due now (in calling hours), for each booked appointment starting
    before `until`: a call, or a text for patients who prefer one."""
    already = select(Touch.appointment_id).where(Touch.step == "reminder")
    appointments = session.scalars(
        select(Appointment).join(Appointment.patient)
        .where(Appointment.status == "booked", Appointment.starts_at > now,
               Appointment.starts_at <= until, Patient.opted_out_at.is_(None),
               Patient.preferred_channel.in_(REMINDER_FLOWS), Appointment.id.not_in(already))
        .order_by(Appointment.starts_at)).all()
    due = [(a, ring_time(a.patient, now)) for a in appointments]
    touches = [Touch(appointment=a, step="reminder", channel=a.patient.preferred_channel,
                     flow=REMINDER_FLOWS[a.patient.preferred_channel], due_at=at) for a, at in due]
    session.add_all(touches)
    session.flush()
    return touches


def touches_to_queue(session: Session, due_before: dt.datetime | None = None) -> list[tuple[int, dt.datetime]]:
    """Every planned touch (due before `due_before`, if given) with the time it may ring (its due
    time, moved into calling hours)."""
    now = dt.datetime.now(dt.timezone.utc)
    query = select(Touch).where(Touch.status == "planned")
    if due_before is not None:
        query = query.where(Touch.due_at < due_before)
    rows = session.scalars(query.order_by(Touch.id).options(
        joinedload(Touch.appointment).joinedload(Appointment.patient).joinedload(Patient.clinic)))
    return [(t.id, ring_time(t.appointment.patient, max(t.due_at, now))) for t in rows]


STUCK_AFTER = dt.timedelta(minutes=10)


def settle_stuck_dialing(session: Session, now: dt.datetime) -> int:
    """Touches claimed for dialling long ago with no call SID: the worker died mid-dial. Whether the
    phone rang is unknown, so they become 'uncertain' (never re-dialled automatically)."""
    stuck = session.scalars(select(Touch).where(Touch.status == "dialing", Touch.call_sid.is_(None),
                                                Touch.updated_at < now - STUCK_AFTER)).all()
    for touch in stuck:
        touch.status, touch.last_error = "uncertain", "worker stopped while dialling"
    return len(stuck)
