"""Calls in the database: find or open one, feed a step's result back, apply status callbacks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import phonenumbers
from babel.dates import format_date, format_time
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

import prompts
from call_flows import SetAppointmentStatus, Step
from ivr.models import Appointment, Call, CallEvent, Patient, Touch, utcnow

# Status callbacks can arrive twice and out of order; a call only ever moves forward.
STATUS_RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3,
               "completed": 4, "busy": 4, "failed": 4, "no-answer": 4, "canceled": 4}
TERMINAL = {status for status, rank in STATUS_RANK.items() if rank == 4}
UNREACHED = {"busy", "failed", "no-answer", "canceled"}


@dataclass(frozen=True)
class CallContext:
    """What prompts may say on this call, and where a transfer may go."""

    catalogue: prompts.Catalogue
    values: dict[str, str]
    staff_number: str | None


def get_call(session: Session, call_sid: str) -> Call | None:
    """The call with this SID, with everything its prompts need, in one query."""
    return session.scalars(
        select(Call).where(Call.call_sid == call_sid).options(
            joinedload(Call.touch).joinedload(Touch.appointment).options(
                joinedload(Appointment.location),
                joinedload(Appointment.patient).joinedload(Patient.clinic)))
    ).one_or_none()


def open_outbound_call(session: Session, call_sid: str, touch: Touch, *, status: str,
                       from_number: str | None = None, to_number: str | None = None) -> Call:
    """The call for this SID, created for the touch if nobody has recorded it yet."""
    call = get_call(session, call_sid)
    if call is not None:
        return call
    try:
        with session.begin_nested():
            session.add(Call(call_sid=call_sid, direction="outbound-api", flow=touch.step,
                             touch_id=touch.id, from_number=from_number, to_number=to_number,
                             status=status, state={}))
    except IntegrityError:
        pass  # the job or a concurrent webhook recorded it first
    return get_call(session, call_sid)


def context_for(call: Call, fallback_staff_number: str = "") -> CallContext:
    """Prompt values for an outbound reminder call, in the patient's language and time zone."""
    appointment = call.touch.appointment
    patient = appointment.patient
    clinic = patient.clinic
    catalogue = catalogue_for(patient.language, clinic.language)
    local = appointment.starts_at.astimezone(ZoneInfo(patient.timezone or clinic.timezone))
    values = {
        "clinic": clinic.name,
        "clinic_phone": speakable_number(clinic.phone),
        "first_name": patient.first_name,
        "date": format_date(local, "EEEE, MMMM d", locale=catalogue.locale),
        "time": format_time(local, "h:mm a", locale=catalogue.locale),
        "location": appointment.location.name,
        "provider": appointment.provider_name,
    }
    return CallContext(catalogue, values, clinic.staff_phone or fallback_staff_number or None)


def catalogue_for(*languages: str) -> prompts.Catalogue:
    """The first language in order that has a catalogue, else English."""
    known = prompts.available_languages()
    for language in languages:
        if language in known:
            return prompts.load(language)
    return prompts.load("en")


def speakable_number(e164: str) -> str:
    """A phone number read digit by digit in its national groups: '5 5 5, 0 1 0 0'."""
    national = phonenumbers.format_number(phonenumbers.parse(e164, None),
                                          phonenumbers.PhoneNumberFormat.NATIONAL)
    return ", ".join(" ".join(group) for group in re.findall(r"\d+", national))


def record_step(session: Session, call: Call, step: Step, caller_input: dict | None) -> None:
    """Save the next state, apply the step's effects and append the audit events."""
    now = utcnow()
    call.state = dict(step.state)
    if caller_input is not None:
        session.add(CallEvent(call=call, at=now, kind="input", detail=caller_input))
    if step.decision:
        session.add(CallEvent(call=call, at=now, kind="decision", detail={"decision": step.decision}))
    for effect in step.effects:
        if isinstance(effect, SetAppointmentStatus):
            appointment = call.touch.appointment
            session.add(CallEvent(call=call, at=now, kind="appointment_status",
                                  detail={"appointment_id": appointment.id, "from": appointment.status,
                                          "to": effect.status}))
            appointment.status = effect.status
            appointment.status_changed_at = now
    session.add(CallEvent(call=call, at=now, kind="prompt", detail={"keys": step.prompts()}))
    if step.outcome:
        call.outcome = step.outcome


def apply_status(session: Session, call_sid: str, status: str, answered_by: str | None,
                 touch: Touch | None = None) -> bool:
    """Record a status callback; False when it is a duplicate, would move the call backwards,
    or names a call we never heard of."""
    if touch is not None:
        open_outbound_call(session, call_sid, touch, status="queued")
    call = session.scalars(select(Call).where(Call.call_sid == call_sid).with_for_update()).one_or_none()
    if call is None:
        return False
    if STATUS_RANK[status] <= STATUS_RANK.get(call.status, 0):
        return False
    now = utcnow()
    session.add(CallEvent(call=call, at=now, kind="status", detail={"from": call.status, "to": status}))
    call.status = status
    if answered_by:
        call.answered_by = answered_by
    if status in TERMINAL:
        call.ended_at = now
        if call.outcome is None:
            call.outcome = "unreached" if status in UNREACHED else "hung_up"
        if call.touch is not None:
            call.touch.status = "unreached" if status in UNREACHED else "completed"
    return True

