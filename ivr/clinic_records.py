"""The clinic's patients, appointments and prescriptions written by its own ids: the one place
that turns what its systems send (the API, a CSV file, a FHIR bundle) into our records, through
the same changes staff make. The caller owns the session and its transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from call_flows.text import clean_name
from ivr.config import is_e164
from ivr.errors import IvrError
from ivr.external_refs import row_id
from ivr.models import Appointment, Clinic, ExternalRef, Location, Patient, Prescription


class RecordRefused(IvrError):
    """A value cannot be taken: `field` names it, the message says why (the sender's to mend)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class RecordConflict(IvrError):
    """The change cannot be made to the record as it is here; the message says why."""


class RecordKept(RecordConflict):
    """The sender would book again a visit cancelled or missed here (by the patient or staff):
    it stays as it is; the new visit needs a new id."""


@dataclass
class Written:
    """What writing one record did."""

    row: Any
    created: bool
    changed: bool           # created, or any value changed
    recovery: int = 0       # contacts planned to win a missed visit back


def region_of(clinic: Clinic) -> str:
    """The country whose way of writing numbers the clinic's systems use (its own number's)."""
    return phonenumbers.region_code_for_number(phonenumbers.parse(clinic.phone, None))


def phone(raw: str, region: str, field: str) -> str:
    """A phone number as E.164, read the way the clinic's country writes numbers."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        parsed = None
    number = parsed and phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not number or not is_e164(number):
        # (not the value itself: refusals are printed and logged)
        raise RecordRefused(field, f"not a phone number ({region} or international form)")
    return number


def name(value: str, field: str) -> str:
    """A name as stored: XML-safe, one space between words; refused when nothing is left."""
    cleaned = clean_name(value)
    if not cleaned:
        raise RecordRefused(field, "must hold more than spaces and control characters")
    return cleaned


def _created(session: Session, clinic_id: int, kind: str, external_id: str, row, system: str = ""):
    """Add `row` under the clinic's id, or None when another writer just did (the unique id
    decides; this one then updates what that one made)."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
            session.add(ExternalRef(clinic_id=clinic_id, kind=kind, system=system, value=external_id, row_id=row.id))
            session.flush()
    except IntegrityError:
        return None
    return row


def _assign(row, values: dict) -> bool:
    """Set the values that differ; True if any did."""
    changed = False
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    return changed


def patient_values(body: dict, region: str) -> tuple[dict, dt.datetime | None]:
    """A loaded PatientIn body as column values (names cleaned, phone as E.164), and its consent."""
    values = {**body, "first_name": name(body["first_name"], "first_name"),
              "last_name": name(body["last_name"], "last_name"), "phone": phone(body["phone"], region, "phone")}
    return values, values.pop("consent_at", None)


def update_patient(patient: Patient, values: dict, consent: dt.datetime | None, source: str) -> bool:
    """Apply values to a patient; consent once given stays. True if anything changed."""
    changed = False
    if consent is not None and patient.consent_at is None:
        patient.consent_at, patient.consent_source, changed = consent, source, True
    return _assign(patient, values) or changed


def write_patient(session: Session, clinic: Clinic, external_id: str, body: dict, source: str,
                  region: str | None = None, system: str = "") -> Written:
    """Create or update the clinic's patient `external_id` (of `system`) from a loaded PatientIn body."""
    values, consent = patient_values(body, region or region_of(clinic))
    found = row_id(session, clinic.id, "patient", external_id, system)
    if found is None:
        patient = _created(session, clinic.id, "patient", external_id, Patient(
            clinic_id=clinic.id, consent_at=consent, consent_source=consent and source, **values), system)
        if patient is not None:
            return Written(patient, True, True)
        found = row_id(session, clinic.id, "patient", external_id, system)
    patient = session.get(Patient, found, with_for_update={"key_share": True})
    return Written(patient, False, update_patient(patient, values, consent, source))


# What a scheduling system's status does to ours: `booked` is what it says of every visit it
# keeps, so it does not undo what the patient said (confirmed, asked to move); a visit cancelled
# or missed is not booked again under the same id (its reminders are spent).
KEEP_OURS = {("booked", "confirmed"), ("booked", "reschedule_requested")}


def write_appointment(session: Session, clinic_id: int, external_id: str, body: dict, now: dt.datetime,
                      system: str = "", patient_system: str = "") -> Written:
    """Create or update the clinic's appointment `external_id` (of `system`) from a loaded
    AppointmentIn body, through the changes staff make (move, cancel, no-show)."""
    from outbound import appointment_changes

    patient_id = row_id(session, clinic_id, "patient", body["patient"], patient_system)
    if patient_id is None:
        raise RecordRefused("patient", "no patient of the clinic has that id: send the patient first")
    location = session.get(Location, body["location_id"])
    if location is None or location.clinic_id != clinic_id:
        raise RecordRefused("location_id", f"the clinic has no location {body['location_id']}")
    details = {"patient_id": patient_id, "location_id": location.id,
               "provider_name": name(body["provider_name"], "provider_name"),
               "provider_title": body.get("provider_title"), "appointment_type": body.get("appointment_type")}
    starts_at, status = body["starts_at"].astimezone(dt.timezone.utc), body.get("status", "booked")
    try:
        found = row_id(session, clinic_id, "appointment", external_id, system)
        if found is None:
            appointment = _created(session, clinic_id, "appointment", external_id, Appointment(
                starts_at=starts_at, status="booked" if status == "no_show" else status, status_changed_at=now,
                **details), system)
            if appointment is not None:
                recovery = 0
                if status == "no_show":
                    recovery = appointment_changes.mark_no_show(session, appointment.id, now).planned
                return Written(appointment, True, True, recovery)
            found = row_id(session, clinic_id, "appointment", external_id, system)
        appointment = session.get(Appointment, found, with_for_update=True)
        ours = appointment.status
        if ours in ("cancelled", "no_show") and status != ours:
            raise RecordKept(f"the appointment is {ours.replace('_', '-')} here (by the patient or staff): "
                                 "book the new visit under a new external id")
        changed = _assign(appointment, details)
        moved = appointment.starts_at != starts_at
        if moved:
            if ours == "no_show":
                raise RecordConflict("a missed visit keeps its time: book the new visit under a new external id")
            zone = ZoneInfo(location.timezone or location.clinic.timezone)
            session.flush()
            appointment_changes.move(session, appointment.id, starts_at.astimezone(zone).replace(tzinfo=None), now)
        recovery = 0
        # A visit the patient asked to move, moved by the clinic, is booked again at its new time.
        keep_ours = (status, ours) in KEEP_OURS and not (moved and ours == "reschedule_requested")
        if status != ours and not keep_ours:
            if status == "cancelled":
                appointment_changes.cancel(session, appointment.id, now)
            elif status == "no_show":
                recovery = appointment_changes.mark_no_show(session, appointment.id, now).planned
            else:
                appointment.status, appointment.status_changed_at = status, now
            changed = True
        session.flush()
        return Written(appointment, False, changed or moved, recovery)
    except appointment_changes.AppointmentChangeRefused as exc:
        raise RecordConflict(str(exc)) from None


def write_prescription(session: Session, clinic: Clinic, external_id: str, body: dict, now: dt.datetime,
                       region: str | None = None, system: str = "", patient_system: str = "") -> Written:
    """Create or update the clinic's prescription `external_id` from a loaded PrescriptionIn body.
    A later refill_due_on records a fill (refills_left, when left out, counts one down); any
    change of the day ends the prompts planned for the old one; active false stops it."""
    from ivr import touches

    patient_id = row_id(session, clinic.id, "patient", body["patient"], patient_system)
    if patient_id is None:
        raise RecordRefused("patient", "no patient of the clinic has that id: send the patient first")
    pharmacy_phone = body.get("pharmacy_phone")
    values = {**body, "patient_id": patient_id, "medication": name(body["medication"], "medication"),
              "pharmacy_name": body.get("pharmacy_name") and name(body["pharmacy_name"], "pharmacy_name"),
              "pharmacy_phone": pharmacy_phone and phone(pharmacy_phone, region or region_of(clinic),
                                                         "pharmacy_phone")}
    del values["patient"]
    found = row_id(session, clinic.id, "prescription", external_id, system)
    if found is None:
        prescription = _created(session, clinic.id, "prescription", external_id, Prescription(**values), system)
        if prescription is not None:
            return Written(prescription, True, True)
        found = row_id(session, clinic.id, "prescription", external_id, system)
    # FOR NO KEY UPDATE, as `ivr prescriptions`: a job adding a task about it need not wait.
    prescription = session.get(Prescription, found, with_for_update={"key_share": True})
    if prescription.patient_id != patient_id:
        # Its planned prompts would still ring the first patient, and name the medication.
        raise RecordConflict("a prescription stays with its patient: stop this one and send the new patient's "
                             "under a new external id")
    due, was_due = values.get("refill_due_on"), prescription.refill_due_on
    if due != was_due:
        filled = was_due is not None and due is not None and due > was_due
        touches.end_refill_prompts(session.connection(), prescription.id,
                                   "refilled" if filled else "due date changed", now)
        if filled:
            prescription.filled_at = now
            if "refills_left" not in body and prescription.refills_left:
                values["refills_left"] = prescription.refills_left - 1
    if prescription.active and not values.get("active", True):
        touches.end_refill_prompts(session.connection(), prescription.id, "prescription stopped", now)
    return Written(prescription, False, _assign(prescription, values))


def let_go(session: Session, patient_id: int, now: dt.datetime) -> tuple[int, int]:
    """The clinic no longer looks after a patient: their visits still to come are cancelled (their
    reminders skipped) and their prescriptions stopped (no more refill prompts); the records stay.
    Returns (visits cancelled, prescriptions stopped)."""
    from sqlalchemy import select

    from ivr import touches
    from outbound import appointment_changes

    visits = session.scalars(select(Appointment.id).where(
        Appointment.patient_id == patient_id, Appointment.starts_at > now,
        Appointment.status.in_(("booked", "confirmed", "reschedule_requested")))).all()
    for appointment_id in visits:
        appointment_changes.cancel(session, appointment_id, now)
    stopped = session.scalars(select(Prescription).where(Prescription.patient_id == patient_id,
                                                         Prescription.active.is_(True))
                              .with_for_update(key_share=True)).all()
    for prescription in stopped:
        prescription.active = False
        touches.end_refill_prompts(session.connection(), prescription.id, "patient let go", now)
    # Whatever else is planned for them (a missed visit's offer to book again) is not wanted either.
    from sqlalchemy import or_, update

    from ivr.models import Touch

    their_visits = select(Appointment.id).where(Appointment.patient_id == patient_id)
    session.execute(update(Touch).where(Touch.status == "planned", or_(
        Touch.patient_id == patient_id, Touch.appointment_id.in_(their_visits)))
        .values(status="skipped", last_error="patient let go", updated_at=now))
    return len(visits), len(stopped)
