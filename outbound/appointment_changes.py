"""Changes made to an appointment outside a call or a text (by staff now; by the API and imports
as they land), and what each means for its outreach: a visit marked missed stops its reminders
and plans its campaign's recovery; a moved visit has its waiting steps planned again. Callers
own the session and the transaction; queueing what was planned is theirs after commit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ivr import tasks, touches
from ivr.errors import IvrError
from ivr.models import Appointment
from outbound import campaigns, planning


class AppointmentChangeRefused(IvrError):
    """The change cannot be made; the message says why, in words for whoever asked."""


class NewTimeHasPassed(AppointmentChangeRefused):
    """A visit cannot be moved to a time that has passed (the new time is what was wrong)."""


@dataclass(frozen=True)
class NoShowMarked:
    """What marking a visit missed did."""

    planned: int                         # recovery contacts planned
    held: tuple[tuple[str, str], ...]    # (step, reason) of those held back
    task_id: int | None                  # the high-priority patient's task for staff


def mark_no_show(session: Session, appointment_id: int, now: dt.datetime) -> NoShowMarked:
    """Mark a booked or confirmed visit that has begun as missed: its reminders still waiting are
    skipped, its campaign's no-show steps are planned, and a high-priority patient gets a
    `no_show_follow_up` task for staff at once. Raises AppointmentChangeRefused otherwise."""
    appointment = session.get(Appointment, appointment_id, with_for_update=True)
    if appointment is None:
        raise AppointmentChangeRefused(f"no appointment with id {appointment_id}")
    if appointment.status == "no_show":
        raise AppointmentChangeRefused(f"appointment {appointment_id} is marked no-show already")
    if appointment.status not in ("booked", "confirmed"):
        raise AppointmentChangeRefused(f"appointment {appointment_id} is {appointment.status}: "
                                       "only a booked or confirmed visit can be missed")
    if appointment.starts_at > now:
        raise AppointmentChangeRefused(f"appointment {appointment_id} has not started yet")
    appointment.status, appointment.status_changed_at = "no_show", now
    session.flush()
    touches.cancel_pending(session.connection(), appointment_id, "appointment no_show", now)
    patient, clinic = appointment.patient, appointment.patient.clinic
    task_id = None
    if patient.high_priority:
        task_id = tasks.open_task(session.connection(), kind="no_show_follow_up", clinic_id=clinic.id,
                                  patient_id=patient.id, appointment_id=appointment_id,
                                  due=tasks.due_at(now, clinic.timezone, clinic.phone, 1, clinic.holiday_country,
                                                   clinic.holiday_subdivision))
    plan = campaigns.plan_campaigns(session, now, now + planning.RECOVERY_WINDOW, clinic_id=clinic.id,
                                    appointment_id=appointment_id, write=True)
    return NoShowMarked(plan.written, tuple(sorted(plan.held)), task_id)


def move(session: Session, appointment_id: int, local_start: dt.datetime, now: dt.datetime) -> tuple[dt.datetime, int]:
    """Move a visit to `local_start` (naive, on its location's clock, else its clinic's) and plan
    its campaign's waiting contacts again for the new time; returns the new start (aware) and
    how many waiting contacts moved. A missed visit is not moved: the new visit is a new
    appointment (its recovery would otherwise speak of the new time)."""
    appointment = session.get(Appointment, appointment_id, with_for_update=True)
    if appointment is None:
        raise AppointmentChangeRefused(f"no appointment with id {appointment_id}")
    if appointment.status == "no_show":
        raise AppointmentChangeRefused(f"appointment {appointment_id} was missed: book a new appointment instead")
    zone = ZoneInfo(appointment.location.timezone or appointment.patient.clinic.timezone)
    starts = local_start.replace(tzinfo=zone).astimezone(dt.timezone.utc)
    if starts <= now:
        raise NewTimeHasPassed("the new time has passed")
    appointment.starts_at, appointment.status_changed_at = starts, now
    session.flush()
    return starts.astimezone(zone), campaigns.replan(session, appointment, now)


def cancel(session: Session, appointment_id: int, now: dt.datetime) -> int:
    """Cancel a visit: its reminders still waiting are skipped; returns how many. A visit missed
    already stays missed (its recovery is the patient's way back)."""
    appointment = session.get(Appointment, appointment_id, with_for_update=True)
    if appointment is None:
        raise AppointmentChangeRefused(f"no appointment with id {appointment_id}")
    if appointment.status == "no_show":
        raise AppointmentChangeRefused(f"appointment {appointment_id} was missed: it cannot be cancelled")
    if appointment.status == "cancelled":
        return 0
    appointment.status, appointment.status_changed_at = "cancelled", now
    session.flush()
    return touches.cancel_pending(session.connection(), appointment_id, "appointment cancelled", now)
