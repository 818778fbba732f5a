"""Decide which contacts to make: one touch per appointment and step, never more."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.models import Appointment, Campaign, Patient, Prescription, Task, Touch
from outbound.hours import contact_time


# Planned touches read per round trip when they are queued.
BATCH = 2000
# The flow each channel's reminder runs.
REMINDER_FLOWS = {"voice": "reminder", "sms": "text_reminder"}
# The flow each channel's no-show recovery runs.
RECOVERY_FLOWS = {"voice": "no_show", "sms": "text_no_show"}
# A missed visit is followed up for this long at most.
RECOVERY_WINDOW = dt.timedelta(days=7)
# The flow each channel's refill prompt runs.
REFILL_FLOWS = {"voice": "refill", "sms": "text_refill"}
# A refill is prompted until this long after the start of its due day at most, and from this long
# before it at the earliest (a refill step's offset is within both).
REFILL_WINDOW = dt.timedelta(days=7)
REFILL_LEAD = dt.timedelta(days=30)


def refill_not_wanted(session: Session, touch_id: int, now: dt.datetime) -> str | None:
    """Why a refill prompt must not go (any more), or None: the prescription was stopped, filled
    (its due date moved on), has no refills left, was asked for already, or is long overdue."""
    touch = session.get(Touch, touch_id)
    prescription = session.get(Prescription, touch.prescription_id)
    if not prescription.active:
        return "the prescription was stopped"
    if prescription.refill_due_on != touch.refill_due_on:
        return "the prescription was refilled (its due date moved)"
    if prescription.refills_left == 0:
        return "no refills left (the prescriber must renew it)"
    patient = touch.contact
    if now.astimezone(ZoneInfo(patient.timezone or patient.clinic.timezone)).date() >= \
            touch.refill_due_on + REFILL_WINDOW:
        return "the refill is more than a week overdue"
    # Asked for this fill already (by a prompt, a text or the inbound line), whether or not the
    # pharmacy team has closed the task since: a fill's prompts start at most REFILL_LEAD before.
    # (Requests before the last fill was recorded were for that fill.)
    since = dt.datetime.combine(touch.refill_due_on - REFILL_LEAD, dt.time(0), dt.timezone.utc)
    if prescription.filled_at is not None:
        since = max(since, prescription.filled_at)
    asked = session.scalar(select(Task.id).where(
        Task.prescription_id == prescription.id, Task.kind == "refill_request", Task.created_at >= since).limit(1))
    return "a refill was asked for already" if asked is not None else None


def plan_reminders(session: Session, now: dt.datetime, until: dt.datetime,
                   clinic_id: int | None = None) -> list[Touch]:
    """Create a lone 'reminder' touch, due now (in calling hours), for each booked appointment
    starting before `until` and never contacted, at a clinic that has no campaign: a call, or a
    text for patients who prefer one. (A clinic's campaigns plan its contacts otherwise:
    outbound/campaigns.py.)"""
    # Any contact made already (a campaign's, before it was paused) is enough; a clinic that set up
    # campaigns gets only what they plan (pausing them all pauses its outreach).
    already = select(Touch.appointment_id).where(Touch.test_call.is_(False), Touch.appointment_id.is_not(None))
    with_campaign = select(Campaign.clinic_id)
    query = (select(Appointment).join(Appointment.patient)
             .where(Appointment.status == "booked", Appointment.starts_at > now,
                    Appointment.starts_at <= until, Patient.opted_out_at.is_(None),
                    Patient.preferred_channel.in_(REMINDER_FLOWS), Appointment.id.not_in(already),
                    Patient.clinic_id.not_in(with_campaign)))
    if clinic_id is not None:
        query = query.where(Patient.clinic_id == clinic_id)
    appointments = session.scalars(query.order_by(Appointment.starts_at)).all()
    due = [(a, contact_time(a.patient, now)) for a in appointments]
    touches = [Touch(appointment=a, patient_id=a.patient_id, step="reminder", channel=a.patient.preferred_channel,
                     flow=REMINDER_FLOWS[a.patient.preferred_channel], due_at=at) for a, at in due]
    session.add_all(touches)
    session.flush()
    return touches


def touches_to_queue(session: Session, due_before: dt.datetime | None = None,
                     appointment_id: int | None = None) -> Iterator[tuple[int, dt.datetime]]:
    """Every planned touch (due before `due_before`, if given) with the time its job should start
    (its due time, or now when that has passed: the job moves it into the patient's contact
    window), read in batches as they are needed, the clinics taking turns: one clinic's backlog
    due now does not hold another's behind it in the queue."""
    now = dt.datetime.now(dt.timezone.utc)
    turn = func.row_number().over(partition_by=Patient.clinic_id, order_by=(Touch.due_at, Touch.id))
    query = (select(Touch.id, Touch.due_at, Patient.clinic_id, turn.label("turn"))
             .join(Touch.patient).where(Touch.status == "planned"))
    if due_before is not None:
        query = query.where(Touch.due_at < due_before)
    if appointment_id is not None:
        query = query.where(Touch.appointment_id == appointment_id)
    planned = query.subquery()
    rows = session.execute(select(planned.c.id, planned.c.due_at).order_by(planned.c.turn, planned.c.clinic_id)
                           .execution_options(yield_per=BATCH))
    for touch_id, due_at in rows:
        yield touch_id, max(due_at, now)


STUCK_AFTER = dt.timedelta(minutes=10)


def settle_stuck_dialing(session: Session, now: dt.datetime) -> int:
    """Touches claimed for dialling long ago with no call SID: the worker died mid-dial. Whether the
    phone rang is unknown, so they become 'uncertain' (never re-dialled automatically)."""
    stuck = session.scalars(select(Touch).where(Touch.status == "dialing", Touch.call_sid.is_(None),
                                                Touch.updated_at < now - STUCK_AFTER)).all()
    for touch in stuck:
        touch.status, touch.last_error = "uncertain", "worker stopped while dialling"
    return len(stuck)
