"""Patients, appointments and prescriptions by the clinic's own ids: PUT creates or updates
(sending the same body twice changes nothing), GET reads, DELETE cancels or stops."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import phonenumbers
from flask import abort, g
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from call_flows.text import clean_name
from ivr.api import problems
from ivr.api.schemas import (AppointmentIn, AppointmentOut, PatientIn, PatientOut, PrescriptionIn,
                             PrescriptionOut)
from ivr.api.tokens import requires
from ivr.config import is_e164
from ivr.db import read_only
from ivr.external_refs import external_ids, row_id
from ivr.models import Appointment, Clinic, ExternalRef, Location, Patient, Prescription, utcnow
from ivr.services import current_services

bp = Blueprint("records", __name__, description="Patients, appointments and prescriptions, by the clinic's own ids")
bp.register_error_handler(Exception, problems.unexpected)
ID = "<external_id:external_id>"


def _created(session: Session, clinic_id: int, kind: str, external_id: str, row):
    """Add `row` under the clinic's id, or None when another request just did (the unique id
    decides; this request then updates what that one made)."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
            session.add(ExternalRef(clinic_id=clinic_id, kind=kind, value=external_id, row_id=row.id))
            session.flush()
    except IntegrityError:
        return None
    return row


def _unprocessable(field: str, message: str):
    abort(problems.problem(422, "the request does not match the schema: see errors",
                           errors={"json": {field: [message]}}))


def _not_found(kind: str, external_id: str):
    abort(problems.problem(404, f"no {kind} with external id {external_id!r}"))


def _phone(raw: str, clinic: Clinic, field: str) -> str:
    """A phone number as E.164, read the way the clinic's country writes numbers."""
    region = phonenumbers.region_code_for_number(phonenumbers.parse(clinic.phone, None))
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        parsed = None
    number = parsed and phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not number or not is_e164(number):
        _unprocessable(field, f"{raw!r} is not a phone number ({region} or international form)")
    return number


def _name(value: str, field: str) -> str:
    cleaned = clean_name(value)
    if not cleaned:
        _unprocessable(field, "must hold more than spaces and control characters")
    return cleaned


def _patient_out(session: Session, patient: Patient) -> dict:
    return {**{k: getattr(patient, k) for k in PatientOut._declared_fields if hasattr(patient, k)},
            "external_id": external_ids(session, patient.clinic_id, "patient", [patient.id]).get(patient.id),
            "opted_out": patient.opted_out_at is not None}


@bp.route(f"/patients/{ID}", methods=["PUT"])
@requires("records:write")
@bp.arguments(PatientIn)
@bp.response(200, PatientOut, description="updated (or unchanged)")
@bp.alt_response(201, schema=PatientOut, description="created")
def put_patient(body: dict, external_id: str):
    """Create or update a patient."""
    clinic_id = g.caller.clinic_id
    with current_services().sessions.begin() as session:
        clinic = session.get(Clinic, clinic_id)
        values = {**body, "first_name": _name(body["first_name"], "first_name"),
                  "last_name": _name(body["last_name"], "last_name"), "phone": _phone(body["phone"], clinic, "phone")}
        consent = values.pop("consent_at")
        found = row_id(session, clinic_id, "patient", external_id)
        if found is None:
            patient = _created(session, clinic_id, "patient", external_id, Patient(
                clinic_id=clinic_id, consent_at=consent, consent_source=consent and "api", **values))
            if patient is not None:
                return _patient_out(session, patient), 201
            found = row_id(session, clinic_id, "patient", external_id)
        patient = session.get(Patient, found, with_for_update={"key_share": True})
        if consent is not None and patient.consent_at is None:
            patient.consent_at, patient.consent_source = consent, "api"
        for key, value in values.items():
            if getattr(patient, key) != value:
                setattr(patient, key, value)
        return _patient_out(session, patient)


@bp.route(f"/patients/{ID}", methods=["GET"])
@requires("records:read")
@bp.response(200, PatientOut)
def get_patient(external_id: str):
    """Read a patient."""
    with read_only(current_services().sessions()) as session:
        found = row_id(session, g.caller.clinic_id, "patient", external_id)
        if found is None:
            _not_found("patient", external_id)
        return _patient_out(session, session.get(Patient, found))


def _appointment_out(session: Session, appointment: Appointment, clinic_id: int, recovery: int = 0) -> dict:
    return {"id": appointment.id,
            "external_id": external_ids(session, clinic_id, "appointment", [appointment.id]).get(appointment.id),
            "patient": external_ids(session, clinic_id, "patient", [appointment.patient_id]).get(appointment.patient_id),
            "location_id": appointment.location_id, "provider_name": appointment.provider_name,
            "provider_title": appointment.provider_title, "starts_at": appointment.starts_at,
            "appointment_type": appointment.appointment_type, "status": appointment.status,
            "recovery_planned": recovery}


@bp.route(f"/appointments/{ID}", methods=["PUT"])
@requires("records:write")
@bp.arguments(AppointmentIn)
@bp.response(200, AppointmentOut, description="updated (or unchanged)")
@bp.alt_response(201, schema=AppointmentOut, description="created")
@bp.alt_response(409, description="the change cannot be made (a cancelled or missed visit booked again, a visit "
                                  "moved to a time that has passed, one not begun marked missed): see detail")
def put_appointment(body: dict, external_id: str):
    """Create or update an appointment: a new time re-plans its reminders, `cancelled` skips them,
    `no_show` plans the campaign's offer to book again. `booked` leaves a visit the patient
    confirmed or asked to move as the patient left it."""
    from outbound.appointment_changes import AppointmentChangeRefused

    clinic_id, now = g.caller.clinic_id, utcnow()
    services = current_services()
    try:
        with services.sessions.begin() as session:
            result, status = _upsert_appointment(session, clinic_id, external_id, body, now)
    except AppointmentChangeRefused as exc:
        abort(problems.problem(409, str(exc)))
    _queue_what_was_planned(services, result["id"])
    return result, status


# What a scheduling system's status does to ours: `booked` is what it says of every visit it
# keeps, so it does not undo what the patient said (confirmed, asked to move); a visit cancelled
# or missed is not booked again under the same id (its reminders are spent).
_KEEP_OURS = {("booked", "confirmed"), ("booked", "reschedule_requested")}


def _upsert_appointment(session: Session, clinic_id: int, external_id: str, body: dict, now: dt.datetime):
    """The appointment's new state, through the same changes staff make (move, cancel, no-show)."""
    from outbound import appointment_changes

    patient_id = row_id(session, clinic_id, "patient", body["patient"])
    if patient_id is None:
        _unprocessable("patient", f"no patient with external id {body['patient']!r}: PUT the patient first")
    location = session.get(Location, body["location_id"])
    if location is None or location.clinic_id != clinic_id:
        _unprocessable("location_id", f"the clinic has no location {body['location_id']}")
    details = {"patient_id": patient_id, "location_id": location.id,
               "provider_name": _name(body["provider_name"], "provider_name"),
               "provider_title": body["provider_title"], "appointment_type": body["appointment_type"]}
    starts_at, status = body["starts_at"].astimezone(dt.timezone.utc), body["status"]
    found = row_id(session, clinic_id, "appointment", external_id)
    if found is None:
        appointment = _created(session, clinic_id, "appointment", external_id, Appointment(
            starts_at=starts_at, status="booked" if status == "no_show" else status, status_changed_at=now,
            **details))
        if appointment is not None:
            recovery = 0
            if status == "no_show":
                recovery = appointment_changes.mark_no_show(session, appointment.id, now).planned
            return _appointment_out(session, appointment, clinic_id, recovery), 201
        found = row_id(session, clinic_id, "appointment", external_id)
    appointment = session.get(Appointment, found, with_for_update=True)
    ours = appointment.status
    if ours in ("cancelled", "no_show") and status != ours:
        raise appointment_changes.AppointmentChangeRefused(
            f"the appointment is {ours.replace('_', '-')} here (by the patient or staff): "
            "book the new visit under a new external id")
    for key, value in details.items():
        if getattr(appointment, key) != value:
            setattr(appointment, key, value)
    moved = appointment.starts_at != starts_at
    if moved:
        if ours == "no_show":
            raise appointment_changes.AppointmentChangeRefused(
                "a missed visit keeps its time: book the new visit under a new external id")
        zone = ZoneInfo(location.timezone or location.clinic.timezone)
        session.flush()
        appointment_changes.move(session, appointment.id, starts_at.astimezone(zone).replace(tzinfo=None), now)
    recovery = 0
    # A visit the patient asked to move, moved by the clinic, is booked again at its new time.
    keep_ours = (status, ours) in _KEEP_OURS and not (moved and ours == "reschedule_requested")
    if status != ours and not keep_ours:
        if status == "cancelled":
            appointment_changes.cancel(session, appointment.id, now)
        elif status == "no_show":
            recovery = appointment_changes.mark_no_show(session, appointment.id, now).planned
        else:
            appointment.status, appointment.status_changed_at = status, now
    session.flush()
    return _appointment_out(session, appointment, clinic_id, recovery), 200


def _queue_what_was_planned(services, appointment_id: int) -> None:
    """Contacts a change planned to go now are queued at once (the worker's reconciler would
    otherwise find them within its interval)."""
    from outbound import planning
    from outbound.queueing import outbound_queue, reconcile

    with read_only(services.sessions()) as session:
        reconcile(outbound_queue(services.redis), planning.touches_to_queue(session, appointment_id=appointment_id))


@bp.route(f"/appointments/{ID}", methods=["GET"])
@requires("records:read")
@bp.response(200, AppointmentOut)
def get_appointment(external_id: str):
    """Read an appointment."""
    with read_only(current_services().sessions()) as session:
        found = row_id(session, g.caller.clinic_id, "appointment", external_id)
        if found is None:
            _not_found("appointment", external_id)
        return _appointment_out(session, session.get(Appointment, found), g.caller.clinic_id)


@bp.route(f"/appointments/{ID}", methods=["DELETE"])
@requires("records:write")
@bp.response(200, AppointmentOut, description="cancelled (or cancelled already)")
@bp.alt_response(409, description="a missed visit cannot be cancelled")
def cancel_appointment(external_id: str):
    """Cancel an appointment: its waiting reminders are skipped. The record stays."""
    from outbound.appointment_changes import AppointmentChangeRefused, cancel

    try:
        with current_services().sessions.begin() as session:
            found = row_id(session, g.caller.clinic_id, "appointment", external_id)
            if found is None:
                _not_found("appointment", external_id)
            cancel(session, found, utcnow())
            return _appointment_out(session, session.get(Appointment, found), g.caller.clinic_id)
    except AppointmentChangeRefused as exc:
        abort(problems.problem(409, str(exc)))


def _prescription_out(session: Session, prescription: Prescription, clinic_id: int) -> dict:
    return {**{k: getattr(prescription, k) for k in PrescriptionOut._declared_fields
               if k not in ("patient", "external_id")},
            "external_id": external_ids(session, clinic_id, "prescription", [prescription.id]).get(prescription.id),
            "patient": external_ids(session, clinic_id, "patient", [prescription.patient_id]).get(prescription.patient_id)}


@bp.route(f"/prescriptions/{ID}", methods=["PUT"])
@requires("records:write")
@bp.arguments(PrescriptionIn)
@bp.response(200, PrescriptionOut, description="updated (or unchanged)")
@bp.alt_response(201, schema=PrescriptionOut, description="created")
@bp.alt_response(409, description="a prescription stays with its patient")
def put_prescription(body: dict, external_id: str):
    """Create or update a prescription. A later refill_due_on records a fill (refills_left, when
    left out, counts one down, as `ivr prescriptions refilled` does); any change of it ends the
    prompts planned for the old day; active false stops it."""
    from ivr import touches

    clinic_id, now = g.caller.clinic_id, utcnow()
    with current_services().sessions.begin() as session:
        clinic = session.get(Clinic, clinic_id)
        patient_id = row_id(session, clinic_id, "patient", body["patient"])
        if patient_id is None:
            _unprocessable("patient", f"no patient with external id {body['patient']!r}: PUT the patient first")
        values = {**body, "patient_id": patient_id, "medication": _name(body["medication"], "medication"),
                  "pharmacy_name": body["pharmacy_name"] and _name(body["pharmacy_name"], "pharmacy_name"),
                  "pharmacy_phone": body["pharmacy_phone"] and _phone(body["pharmacy_phone"], clinic,
                                                                      "pharmacy_phone")}
        del values["patient"]
        found = row_id(session, clinic_id, "prescription", external_id)
        if found is None:
            prescription = _created(session, clinic_id, "prescription", external_id, Prescription(**values))
            if prescription is not None:
                return _prescription_out(session, prescription, clinic_id), 201
            found = row_id(session, clinic_id, "prescription", external_id)
        # FOR NO KEY UPDATE, as `ivr prescriptions`: a job adding a task about it need not wait.
        prescription = session.get(Prescription, found, with_for_update={"key_share": True})
        if prescription.patient_id != patient_id:
            # Its planned prompts would still ring the first patient, and name the medication.
            abort(problems.problem(409, "a prescription stays with its patient: stop this one (DELETE) and send "
                                        "the new patient's under a new external id"))
        due, was_due = values["refill_due_on"], prescription.refill_due_on
        if due != was_due:
            filled = was_due is not None and due is not None and due > was_due
            touches.end_refill_prompts(session.connection(), prescription.id,
                                       "refilled" if filled else "due date changed", now)
            if filled:
                prescription.filled_at = now
                if "refills_left" not in body and prescription.refills_left:
                    values["refills_left"] = prescription.refills_left - 1
        if prescription.active and not values["active"]:
            touches.end_refill_prompts(session.connection(), prescription.id, "prescription stopped", now)
        for key, value in values.items():
            if getattr(prescription, key) != value:
                setattr(prescription, key, value)
        return _prescription_out(session, prescription, clinic_id)


@bp.route(f"/prescriptions/{ID}", methods=["GET"])
@requires("records:read")
@bp.response(200, PrescriptionOut)
def get_prescription(external_id: str):
    """Read a prescription."""
    with read_only(current_services().sessions()) as session:
        found = row_id(session, g.caller.clinic_id, "prescription", external_id)
        if found is None:
            _not_found("prescription", external_id)
        return _prescription_out(session, session.get(Prescription, found), g.caller.clinic_id)


@bp.route(f"/prescriptions/{ID}", methods=["DELETE"])
@requires("records:write")
@bp.response(200, PrescriptionOut, description="stopped (or stopped already)")
def stop_prescription(external_id: str):
    """Stop a prescription: no more refill prompts, and it is not offered for refill."""
    from ivr import touches

    with current_services().sessions.begin() as session:
        found = row_id(session, g.caller.clinic_id, "prescription", external_id)
        if found is None:
            _not_found("prescription", external_id)
        prescription = session.get(Prescription, found, with_for_update={"key_share": True})
        if prescription.active:
            prescription.active = False
            touches.end_refill_prompts(session.connection(), prescription.id, "prescription stopped", utcnow())
        return _prescription_out(session, prescription, g.caller.clinic_id)


